"""The broker's view of topics: a cache over the metadata store, refreshed to see peers' changes."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from streamhouse.metadata.model import TopicMetadata
from streamhouse.metadata.store import MetadataStore

log = logging.getLogger("streamhouse.topics")

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


def topic_name_problem(name: str | None) -> str | None:
    """Why a topic name is illegal in Kafka, or None when it is fine."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters"
    if not _LEGAL_TOPIC_NAME.match(name):
        return (
            f"Topic name {name!r} is illegal, it contains a character other than "
            "ASCII alphanumerics, '.', '_' and '-'"
        )
    return None


class TopicCache:
    """Topics by name and id; a miss asks the store, and the whole map is reloaded periodically."""

    def __init__(self, store: MetadataStore, refresh_interval_s: float = 5.0) -> None:
        self.store = store
        self.refresh_interval_s = refresh_interval_s
        self._by_name: dict[str, TopicMetadata] = {}
        self._by_id: dict[uuid.UUID, TopicMetadata] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def reload(self) -> None:
        async with self._lock:
            topics = await self.store.list_topics()
            self._by_name = {t.name: t for t in topics}
            self._by_id = {t.topic_id: t for t in topics}
            self._loaded_at = time.monotonic()

    async def _maybe_reload(self) -> None:
        if time.monotonic() - self._loaded_at > self.refresh_interval_s:
            await self.reload()

    async def all(self) -> list[TopicMetadata]:
        await self._maybe_reload()
        return list(self._by_name.values())

    async def get(self, name: str) -> TopicMetadata | None:
        topic = self._by_name.get(name)
        if topic is not None:
            return topic
        topic = await self.store.get_topic(name)
        if topic is not None:
            self.put(topic)
        return topic

    async def get_by_id(self, topic_id: uuid.UUID) -> TopicMetadata | None:
        topic = self._by_id.get(topic_id)
        if topic is not None:
            return topic
        topic = await self.store.get_topic_by_id(topic_id)
        if topic is not None:
            self.put(topic)
        return topic

    def cached(self, name: str) -> TopicMetadata | None:
        """The cached topic without a store round trip (for hot paths after a first lookup)."""
        return self._by_name.get(name)

    def put(self, topic: TopicMetadata) -> None:
        old = self._by_name.get(topic.name)
        if old is not None and old.topic_id != topic.topic_id:
            self._by_id.pop(old.topic_id, None)
        self._by_name[topic.name] = topic
        self._by_id[topic.topic_id] = topic

    def forget(self, topic: TopicMetadata) -> None:
        self._by_name.pop(topic.name, None)
        self._by_id.pop(topic.topic_id, None)

    async def refreshed(self, topic_id: uuid.UUID) -> TopicMetadata | None:
        """Re-read one topic from the store (after a change to its configs or partitions)."""
        topic = await self.store.get_topic_by_id(topic_id)
        if topic is None:
            old = self._by_id.get(topic_id)
            if old is not None:
                self.forget(old)
        else:
            self.put(topic)
        return topic
