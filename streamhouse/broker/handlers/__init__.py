"""API handlers grouped by family; HANDLERS maps each API key to its handler.

A handler is an async function (RequestContext, request) -> response. An API key is
advertised by ApiVersions only when it is in streamhouse.protocol.versions.SUPPORTED_VERSIONS
and has a handler here. FAST_HANDLERS (see connection.FastHandler) take the requests of
their API they can answer without a task; the others still go to HANDLERS.
"""

from __future__ import annotations

from streamhouse.broker.connection import FastHandler, Handler
from streamhouse.broker.handlers import (
    acls,
    admin_configs,
    admin_topics,
    api_versions,
    cluster,
    fetch,
    groups,
    log_dirs,
    offsets,
    produce,
    transactions,
)

HANDLERS: dict[int, Handler] = {}
for _family in (
    api_versions,
    cluster,
    produce,
    fetch,
    offsets,
    admin_topics,
    admin_configs,
    log_dirs,
    groups,
    transactions,
    acls,
):
    HANDLERS.update(_family.HANDLERS)

FAST_HANDLERS: dict[int, FastHandler] = dict(produce.FAST_HANDLERS)
