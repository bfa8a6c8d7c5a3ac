-- Transactions: the coordinator's state per transactional id, and per partition the
-- open transactions (which hold the last stable offset back) and the aborted ones
-- (which read_committed fetches report).

CREATE TABLE transactions (
    transactional_id TEXT PRIMARY KEY,
    producer_id INTEGER NOT NULL,
    producer_epoch INTEGER NOT NULL,
    last_producer_id INTEGER NOT NULL,
    last_producer_epoch INTEGER NOT NULL,
    state TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    partitions TEXT NOT NULL,
    groups TEXT NOT NULL,
    pending_offsets TEXT NOT NULL
);

CREATE INDEX transactions_by_producer ON transactions (producer_id);

CREATE TABLE open_transactions (
    topic_id TEXT NOT NULL,
    partition INTEGER NOT NULL,
    producer_id INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
) WITHOUT ROWID;

CREATE TABLE aborted_transactions (
    topic_id TEXT NOT NULL,
    partition INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    producer_id INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, last_offset)
) WITHOUT ROWID;
