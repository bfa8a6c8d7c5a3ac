"""The Broker: opens the stores, serves the Kafka and HTTP listeners, shuts down cleanly."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import fcntl
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from streamhouse.broker import config_defs
from streamhouse.broker.config_entries import BrokerConfigLayers
from streamhouse.broker.connection import FastHandler, Handler, KafkaConnection
from streamhouse.broker.dynamic_configs import DynamicBrokerConfigs, split_stored
from streamhouse.broker.metrics import BrokerMetrics
from streamhouse.broker.settings import BrokerSettings
from streamhouse.broker.topics import TopicCache
from streamhouse.metadata import open_metadata_store
from streamhouse.metadata.model import BrokerInfo, TopicMetadata
from streamhouse.metadata.store import MetadataStore
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.codec import RequestHeader
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.versions import SUPPORTED_VERSIONS
from streamhouse.storage import open_object_store
from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.object_store import ObjectStore
from streamhouse.storage.settings import defaults_for

log = logging.getLogger("streamhouse.broker")

HEARTBEAT_INTERVAL_S = 5.0
BROKER_LIVENESS_MS = 30_000


class DataDirLocked(RuntimeError):
    pass


class DataDirLock:
    """An exclusive lock on the data dir, so two brokers never share one embedded store."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DataDirLocked(
                f"data dir {self.path.parent} is in use by another broker (pid {holder or '?'}); "
                "stop it or give this one its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def new_cluster_id() -> str:
    """Kafka's cluster id form: a UUID as url-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Broker:
    def __init__(self, settings: BrokerSettings) -> None:
        from streamhouse.broker.handlers import FAST_HANDLERS, HANDLERS

        self.settings = settings
        self.node_id = settings.node_id
        self.handlers: dict[int, Handler] = dict(HANDLERS)
        self.fast_handlers: dict[int, FastHandler] = dict(FAST_HANDLERS)
        self.metrics = BrokerMetrics(settings.metrics_partition_series)
        self.metadata: MetadataStore | None = None
        self.objects: ObjectStore | None = None
        self.engine: StorageEngine | None = None
        self.topics: TopicCache | None = None
        self.cluster_id = ""
        self.connections: set[KafkaConnection] = set()
        self.started_at_ms = 0
        self.ready = False
        self._lock: DataDirLock | None = None
        self._server: asyncio.Server | None = None
        self._http: Any = None
        self._background: list[asyncio.Task[None]] = []
        self.dynamic_broker_configs: dict[str, str] = {}
        """Effective dynamic broker configs: this broker's own over the cluster defaults."""
        self.dynamic_configs = DynamicBrokerConfigs()
        self.components: dict[str, Any] = {}
        """Coordinators and other per-broker services, registered by name at start."""

    # -- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        if settings.uses_data_dir:
            self._lock = DataDirLock(settings.data_dir)
            self._lock.acquire()
        self.metadata = await open_metadata_store(settings.metadata_url)
        self.cluster_id = await self.metadata.get_or_set_cluster_id(
            settings.cluster_id or new_cluster_id()
        )
        if settings.cluster_id and settings.cluster_id != self.cluster_id:
            raise RuntimeError(
                f"--cluster-id {settings.cluster_id} does not match the stored cluster id "
                f"{self.cluster_id}"
            )
        self.objects = open_object_store(settings.storage_url)
        storage_settings = defaults_for(settings.storage_url)
        overrides: dict[str, Any] = {
            name: value
            for name, value in (
                ("seal_bytes", settings.seal_bytes),
                ("seal_ms", settings.seal_ms),
                ("seal_when_idle", settings.seal_when_idle),
                ("seal_gap_ms", settings.seal_gap_ms),
                ("seal_hold_ms", settings.seal_hold_ms),
                ("seal_ready_bytes", settings.seal_ready_bytes),
                ("cache_bytes", settings.cache_bytes),
            )
            if value is not None
        }
        storage_settings = dataclasses.replace(storage_settings, **overrides)
        self.engine = StorageEngine(
            self.metadata, self.objects, storage_settings, self.node_id, observer=self.metrics
        )
        await self.engine.start()
        self.topics = TopicCache(self.metadata)
        await self.topics.reload()
        await self.reload_dynamic_broker_configs()
        await self._register()
        from streamhouse.broker.components import start_components

        await start_components(self)
        host, port = settings.listen_address
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(self, "PLAINTEXT"), host, port, reuse_address=True, backlog=1024
        )
        if settings.http_address is not None:
            from streamhouse.broker.http import start_http_server

            self._http = await start_http_server(self, *settings.http_address)
        self._background.append(asyncio.create_task(self._heartbeat_loop()))
        self._background.append(asyncio.create_task(self._idle_sweep_loop()))
        self.started_at_ms = int(time.time() * 1000)
        self.ready = True
        log.info(
            "broker ready node_id=%s cluster_id=%s listen=%s:%s advertise=%s:%s metadata=%s "
            "storage=%s event_loop=%s",
            self.node_id,
            self.cluster_id,
            host,
            self.bound_port,
            *settings.advertised_address,
            _redact(settings.metadata_url),
            _redact(settings.storage_url),
            type(loop).__module__.partition(".")[0],
        )

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def advertised_address(self) -> tuple[str, int]:
        host, port = self.settings.advertised_address
        if port == 0 and self._server is not None:
            port = self.bound_port
        return host, port

    async def stop(self) -> None:
        """Stop accepting, answer what is in flight, seal and commit the open segment, close."""
        self.ready = False
        if self._server is not None:
            self._server.close()
        await self._answer_in_flight(timeout_s=10.0)
        for task in self._background:
            task.cancel()
        from streamhouse.broker.components import stop_components

        await stop_components(self)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self.engine is not None:
            await self.engine.close()
        if self._http is not None:
            await self._http.close()
        if self.metadata is not None:
            try:
                await self.metadata.unregister_broker(self.node_id)
            except Exception:  # a store that is down must not block shutdown
                log.warning("could not unregister broker node_id=%s", self.node_id)
            await self.metadata.close()
        if self.objects is not None:
            await self.objects.close()
        if self._lock is not None:
            self._lock.release()
        log.info("broker stopped node_id=%s", self.node_id)

    async def _answer_in_flight(self, timeout_s: float) -> None:
        """Read no further requests, and answer those already read: a produce among them
        may wait for a seal that is far off (seal age, hold), so the open segment is
        sealed now, and again for appends placed meanwhile."""
        for conn in self.connections:
            conn.stop_reading()
        pending = {t for c in self.connections for t in c.tasks}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s

        def unanswered() -> int:
            return len(pending) + sum(c.fast_in_flight for c in self.connections)

        while unanswered() and loop.time() < deadline:
            if self.engine is not None:
                self.engine.seal()
            wait_s = min(0.05, max(0.0, deadline - loop.time()))
            if pending:
                _done, pending = await asyncio.wait(pending, timeout=wait_s)
            else:
                await asyncio.sleep(wait_s)
        if unanswered():
            log.warning(
                "shutting down with %d requests unanswered after %.0f s", unanswered(), timeout_s
            )

    async def _register(self) -> None:
        assert self.metadata is not None
        host, port = self.advertised_address
        await self.metadata.register_broker(
            BrokerInfo(
                node_id=self.node_id,
                host=host,
                port=port if port else self.settings.listen_address[1],
                rack=self.settings.rack,
                last_heartbeat_ms=int(time.time() * 1000),
            )
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            try:
                await self._register()
                # Dynamic broker configs changed through another broker take effect here too.
                await self.reload_dynamic_broker_configs()
            except Exception as exc:
                log.warning("broker heartbeat failed: %s", exc)

    async def _idle_sweep_loop(self) -> None:
        idle_s = self.settings.idle_timeout_ms / 1000
        while True:
            await asyncio.sleep(min(idle_s / 4, 30.0))
            now = time.monotonic()
            for conn in list(self.connections):
                if not conn.pending and now - conn.last_activity > idle_s:
                    conn.abort(f"idle for more than {idle_s:.0f}s", reason="idle")

    async def live_brokers(self) -> list[BrokerInfo]:
        assert self.metadata is not None
        brokers = await self.metadata.live_brokers(BROKER_LIVENESS_MS, int(time.time() * 1000))
        if not any(b.node_id == self.node_id for b in brokers):
            host, port = self.advertised_address
            brokers.append(BrokerInfo(self.node_id, host, port, self.settings.rack))
        return sorted(brokers, key=lambda b: b.node_id)

    # -- connections --------------------------------------------------------------------
    def connection_opened(self, conn: KafkaConnection) -> None:
        self.connections.add(conn)
        self.metrics.connection_opened()

    def connection_closed(self, conn: KafkaConnection, reason: str) -> None:
        self.connections.discard(conn)
        self.metrics.connection_closed(reason)

    def supports(self, api_key: int, api_version: int) -> bool:
        versions = (
            SUPPORTED_VERSIONS.get(ApiKey(api_key))
            if api_key in ApiKey._value2member_map_
            else None
        )
        return versions is not None and versions[0] <= api_version <= versions[1]

    def unsupported_version_response(
        self, header: RequestHeader
    ) -> tuple[RequestHeader, Any] | None:
        if header.api_key == ApiKey.API_VERSIONS:
            from streamhouse.broker.handlers.api_versions import unsupported_version_response

            return unsupported_version_response(header)
        return None

    # -- configs ----------------------------------------------------------------------------
    def broker_config(self, name: str) -> str:
        """A broker config's effective value: dynamic (cluster-wide) > static > default."""
        if name in self.dynamic_broker_configs:
            return self.dynamic_broker_configs[name]
        if name in self.settings.broker_configs:
            return self.settings.broker_configs[name]
        definition = config_defs.BROKER_CONFIGS.get(name)
        if definition is None or definition.default is None:
            raise KeyError(f"no default for broker config {name}")
        return definition.default

    def validate_topic_config(self, name: str, value: str) -> str:
        """The normalized value of a topic config, or TopicError(INVALID_CONFIG)."""
        from streamhouse.broker.topic_ops import TopicError

        try:
            config_defs.validate_topic_config(name, value)
        except config_defs.ConfigError as exc:
            raise TopicError(ErrorCode(exc.error_code), str(exc)) from None
        return config_defs.normalize(config_defs.TOPIC_CONFIGS[name], value)

    def config_layers(self) -> BrokerConfigLayers:
        """The broker config values in effect: own dynamic > cluster dynamic > static > default."""
        return BrokerConfigLayers(
            node=self.dynamic_configs.node,
            cluster=self.dynamic_configs.cluster,
            # The node id is a startup option, not a --set config, yet Kafka reports it
            # (and broker.id, its synonym) among the static configs.
            static={
                **self.settings.broker_configs,
                "node.id": str(self.node_id),
                "broker.id": str(self.node_id),
            },
        )

    def topic_config(self, topic: TopicMetadata, name: str) -> str | None:
        value, _source = config_defs.topic_config_value(
            name,
            topic.configs,
            self.dynamic_configs.cluster,
            self.settings.broker_configs,
            node_broker_configs=self.dynamic_configs.node,
        )
        return value

    async def reload_dynamic_broker_configs(self) -> None:
        assert self.metadata is not None
        self.dynamic_configs = split_stored(await self.metadata.get_broker_configs(), self.node_id)
        self.dynamic_broker_configs = self.dynamic_configs.effective

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()


def _redact(url: str) -> str:
    """Hide a password in a store URL before it reaches a log line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
