"""Readiness checks: can this broker serve right now? Shared by /readyz and the ready gauge.

Each dependency gets one quick probe with a short timeout: the object store's
`probe` makes a single attempt (the S3 store's normal path retries for a long
time, which would hide an outage from the check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    problem: str | None = None
    """None when the dependency is fine, else why not."""

    @property
    def ok(self) -> bool:
        return self.problem is None


async def _probe(name: str, probe: Awaitable[None]) -> Check:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
        return Check(name)
    except Exception as exc:
        return Check(name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


async def readiness_checks(broker: Broker) -> list[Check]:
    """metadata_store, object_store and kafka_listener, in that order."""
    checks: list[Check] = []
    if broker.metadata is not None and broker.objects is not None:
        checks = list(
            await asyncio.gather(
                _probe("metadata_store", broker.metadata.ping()),
                _probe("object_store", broker.objects.probe(CHECK_TIMEOUT_S)),
            )
        )
    else:
        checks = [Check("metadata_store", "not open"), Check("object_store", "not open")]
    listening = broker.ready and broker.is_serving()
    checks.append(Check("kafka_listener", None if listening else "not accepting connections"))
    return checks
