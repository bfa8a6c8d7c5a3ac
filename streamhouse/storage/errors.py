"""Kafka error codes the storage engine reports, by name (values are Kafka's)."""

from __future__ import annotations

import enum


class StorageErrorCode(enum.IntEnum):
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    KAFKA_STORAGE_ERROR = 56
    """Retriable: the object or metadata store failed; nothing was made visible."""
