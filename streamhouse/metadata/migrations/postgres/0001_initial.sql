-- Initial StreamHouse metadata schema (PostgreSQL).

CREATE TABLE cluster (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    cluster_id TEXT NOT NULL
);

CREATE TABLE brokers (
    node_id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    rack TEXT,
    last_heartbeat_ms BIGINT NOT NULL
);

CREATE TABLE broker_configs (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE topics (
    topic_id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    partition_count INTEGER NOT NULL,
    replication_factor INTEGER NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE topic_configs (
    topic_id UUID NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (topic_id, name)
);

CREATE TABLE partitions (
    topic_id UUID NOT NULL,
    partition INTEGER NOT NULL,
    high_watermark BIGINT NOT NULL DEFAULT 0,
    log_start_offset BIGINT NOT NULL DEFAULT 0,
    leader_epoch INTEGER NOT NULL DEFAULT 0,
    last_stable_offset BIGINT NOT NULL DEFAULT 0,
    max_timestamp BIGINT NOT NULL DEFAULT -1,
    PRIMARY KEY (topic_id, partition)
);

-- Every committed segment object; rows go when the object is deleted from the store.
CREATE TABLE objects (
    object_id BIGSERIAL PRIMARY KEY,
    object_key TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- The segment index: one row per contiguous run of batches of one partition in one object.
CREATE TABLE chunks (
    topic_id UUID NOT NULL,
    partition INTEGER NOT NULL,
    last_offset BIGINT NOT NULL,
    base_offset BIGINT NOT NULL,
    object_id BIGINT NOT NULL REFERENCES objects (object_id),
    byte_start BIGINT NOT NULL,
    byte_length BIGINT NOT NULL,
    batch_count INTEGER NOT NULL,
    max_timestamp BIGINT NOT NULL,
    cumulative_max_timestamp BIGINT NOT NULL,
    PRIMARY KEY (topic_id, partition, last_offset)
);

CREATE INDEX chunks_by_cumulative_timestamp
    ON chunks (topic_id, partition, cumulative_max_timestamp, last_offset);
CREATE INDEX chunks_by_object ON chunks (object_id);

-- Producer state per partition: epoch and the last five batches (JSON) for dedup.
CREATE TABLE producer_states (
    topic_id UUID NOT NULL,
    partition INTEGER NOT NULL,
    producer_id BIGINT NOT NULL,
    producer_epoch INTEGER NOT NULL,
    batches TEXT NOT NULL,
    last_timestamp BIGINT NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
);

CREATE TABLE producer_id_counter (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    next_producer_id BIGINT NOT NULL
);
INSERT INTO producer_id_counter (singleton, next_producer_id) VALUES (1, 0);

CREATE TABLE producers (
    producer_id BIGINT PRIMARY KEY,
    producer_epoch INTEGER NOT NULL
);

CREATE TABLE group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    committed_offset BIGINT NOT NULL,
    leader_epoch INTEGER NOT NULL,
    metadata TEXT,
    commit_timestamp_ms BIGINT NOT NULL,
    expire_timestamp_ms BIGINT NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);

CREATE INDEX group_offsets_by_topic ON group_offsets (topic);

CREATE TABLE group_states (
    group_id TEXT PRIMARY KEY,
    protocol_type TEXT NOT NULL,
    state BYTEA NOT NULL
);
