"""The broker's typed settings, loaded in one place from CLI options, environment and TOML."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
EVENT_LOOPS = ("auto", "asyncio", "uvloop")


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """'host:port', ':port', 'host' or '[v6]:port' -> (host, port)."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port) if port else default_port


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    listen: str = "0.0.0.0:9092"
    advertise: str | None = None
    data_dir: Path = Path("./streamhouse-data")
    metadata: str | None = None
    storage: str | None = None
    http: str | None = "0.0.0.0:9644"
    node_id: int = 0
    cluster_id: str | None = None
    rack: str | None = None
    log_level: str = "INFO"
    log_format: str = "kv"
    event_loop: str = "auto"
    seal_bytes: int | None = None
    seal_ms: int | None = None
    seal_when_idle: bool | None = None
    seal_gap_ms: int | None = None
    seal_hold_ms: int | None = None
    seal_ready_bytes: int | None = None
    cache_bytes: int | None = None
    max_request_bytes: int = 100 * MiB
    idle_timeout_ms: int = 600_000
    metrics_partition_series: int = 1000
    """At most this many partitions get per-partition series (offsets, and as many for lag)."""
    broker_configs: dict[str, str] = field(default_factory=dict)
    """Static broker configs in Kafka's names (auto.create.topics.enable, num.partitions...)."""

    @property
    def listen_address(self) -> tuple[str, int]:
        return split_host_port(self.listen, 9092)

    @property
    def advertised_address(self) -> tuple[str, int]:
        if self.advertise:
            return split_host_port(self.advertise, self.listen_address[1])
        host, port = self.listen_address
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1" if host != "::" else "::1"
        return host, port

    @property
    def http_address(self) -> tuple[str, int] | None:
        if not self.http or self.http.lower() in ("off", "none", "disabled"):
            return None
        return split_host_port(self.http, 9644)

    @property
    def metadata_url(self) -> str:
        return self.metadata or f"sqlite:///{self.data_dir.resolve() / 'metadata.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage or f"file://{self.data_dir.resolve() / 'objects'}"

    @property
    def uses_data_dir(self) -> bool:
        """Whether anything of this broker lives in data_dir (and so must be locked)."""
        return self.metadata_url.startswith("sqlite") or self.storage_url.startswith("file")


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(BrokerSettings)}
    kind = str(kinds[name])
    if value is None:
        return None
    if name == "data_dir":
        return Path(value)
    if name == "broker_configs":
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("bool"):
        return _boolean(name, value)
    return str(value)


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name.replace('_', '-')} must be true or false, not {value!r}")


def load_settings(
    cli_values: dict[str, Any], config_file: str | Path | None = None
) -> BrokerSettings:
    """Merge settings: CLI (or its STREAMHOUSE_* environment variable) > TOML file > defaults.

    `cli_values` holds None for options that were not given on the command line
    nor in the environment.
    """
    file_values: dict[str, Any] = {}
    if config_file:
        with open(config_file, "rb") as fh:
            raw = tomllib.load(fh)
        known = {f.name for f in fields(BrokerSettings)}
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name == "broker" and isinstance(value, dict):
                name = "broker_configs"
            if name not in known:
                raise ValueError(f"{config_file}: unknown setting {key!r}")
            file_values[name] = value
    merged: dict[str, Any] = {}
    for name, value in {
        **file_values,
        **{k: v for k, v in cli_values.items() if v is not None},
    }.items():
        merged[name] = _coerce(name, value)
    if "broker_configs" in cli_values and cli_values["broker_configs"]:
        merged["broker_configs"] = {
            **_coerce("broker_configs", file_values.get("broker_configs", {})),
            **cli_values["broker_configs"],
        }
    event_loop = merged.get("event_loop", "auto")
    if event_loop not in EVENT_LOOPS:
        raise ValueError(f"event-loop must be one of {', '.join(EVENT_LOOPS)}, not {event_loop!r}")
    return BrokerSettings(**merged)
