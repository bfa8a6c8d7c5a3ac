"""Per-broker services that live beside the listener (coordinators, cleaners), started and stopped in order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.broker")

Factory = Callable[["Broker"], Awaitable[Any]]



async def _group_coordinator(broker: Broker) -> Any:
    from streamhouse.broker.groups.coordinator import start_group_coordinator

    return await start_group_coordinator(broker)


async def _transaction_coordinator(broker: Broker) -> Any:
    from streamhouse.broker.transactions.coordinator import start_transaction_coordinator

    return await start_transaction_coordinator(broker)


# (name, factory) in start order; each factory returns an object with an async close().
COMPONENTS: list[tuple[str, Factory]] = [
    ("groups", _group_coordinator),
    ("transactions", _transaction_coordinator),
]


async def start_components(broker: Broker) -> None:
    for name, factory in COMPONENTS:
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
