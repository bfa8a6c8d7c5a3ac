"""API handlers grouped by family; HANDLERS maps each API key to its handler.

A handler is an async function (RequestContext, request) -> response. An API key is
advertised by ApiVersions only when it is in streamhouse.protocol.versions.SUPPORTED_VERSIONS
and has a handler here.
"""

from __future__ import annotations

from streamhouse.broker.connection import Handler
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
