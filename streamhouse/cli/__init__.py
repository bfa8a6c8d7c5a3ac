"""The `streamhouse` operator command: topics, groups, records, cluster, against any Kafka."""
