"""StreamHouse: a Kafka-compatible broker over object storage and a SQL metadata store."""

__version__ = "0.1.0"
