"""An asyncio Kafka client built only on streamhouse.protocol, for any Kafka-compatible cluster.

connection: one broker connection (ApiVersions negotiation, pipelined requests).
cluster: bootstrap, metadata, connections per node, leader/coordinator routing, retries.
admin: topic, config, group and offset operations.
producer, consumer: record traffic for the command line tools.
"""
