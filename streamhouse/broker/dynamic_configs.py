"""How dynamic broker configs are keyed in the metadata store: cluster defaults and per-broker.

Kafka keeps two dynamic scopes for broker configs: the cluster-wide default (resource name
"") and one broker id. The store holds both in one name -> value table: a cluster default
under its plain name, a per-broker value under "<node id>/<name>".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_SEPARATOR = "/"


def stored_name(node_id: int | None, name: str) -> str:
    """The store key of a config: per broker when node_id is given, else the cluster default."""
    return name if node_id is None else f"{node_id}{_SEPARATOR}{name}"


@dataclass(frozen=True, slots=True)
class DynamicBrokerConfigs:
    """The dynamic broker configs one broker runs with."""

    cluster: dict[str, str] = field(default_factory=dict)
    """Cluster-wide defaults (DYNAMIC_DEFAULT_BROKER_CONFIG)."""
    node: dict[str, str] = field(default_factory=dict)
    """This broker's own values (DYNAMIC_BROKER_CONFIG), which win over the defaults."""

    @property
    def effective(self) -> dict[str, str]:
        return {**self.cluster, **self.node}


def split_stored(stored: Mapping[str, str], node_id: int) -> DynamicBrokerConfigs:
    """Separate the cluster defaults from this broker's values; other brokers' are dropped."""
    cluster: dict[str, str] = {}
    node: dict[str, str] = {}
    prefix = f"{node_id}{_SEPARATOR}"
    for key, value in stored.items():
        head, sep, rest = key.partition(_SEPARATOR)
        if not sep or not head.isdigit():
            cluster[key] = value
        elif key.startswith(prefix):
            node[rest] = value
    return DynamicBrokerConfigs(cluster, node)
