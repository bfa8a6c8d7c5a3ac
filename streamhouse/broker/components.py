"""Per-broker services beside the listener (coordinators, cleaners), started and stopped."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.broker")

# (name, "module:factory") in start order. A factory is an async function of the broker that
# returns a started service with an async close(); modules are imported when the broker starts.
COMPONENTS: list[tuple[str, str]] = [
    ("groups", "streamhouse.broker.groups.coordinator:start_group_coordinator"),
    ("transactions", "streamhouse.broker.transactions.coordinator:start_transaction_coordinator"),
    ("retention", "streamhouse.broker.retention:start_retention"),
    ("garbage", "streamhouse.broker.garbage:start_garbage_collector"),
    ("memory", "streamhouse.broker.memory:start_memory_trimmer"),
]


async def start_components(broker: Broker) -> None:
    for name, target in COMPONENTS:
        module_name, _, factory_name = target.partition(":")
        factory = getattr(importlib.import_module(module_name), factory_name)
        broker.components[name] = await factory(broker)


async def stop_components(broker: Broker) -> None:
    for name, _ in reversed(COMPONENTS):
        component = broker.components.pop(name, None)
        if component is None:
            continue
        try:
            await component.close()
        except Exception:
            log.exception("component %s failed to stop cleanly", name)
