"""ApiVersions: what the broker implements, built from the one advertised-versions table."""

from __future__ import annotations

from streamhouse.broker.connection import RequestContext
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.codec import RequestHeader
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import ApiVersionsRequest, ApiVersionsResponse
from streamhouse.protocol.versions import SUPPORTED_VERSIONS


def advertised_api_versions() -> list[ApiVersionsResponse.ApiVersion]:
    from streamhouse.broker.handlers import HANDLERS

    return [
        ApiVersionsResponse.ApiVersion(api_key=int(key), min_version=lo, max_version=hi)
        for key, (lo, hi) in sorted(SUPPORTED_VERSIONS.items())
        if key in HANDLERS
    ]


async def handle_api_versions(
    ctx: RequestContext, request: ApiVersionsRequest
) -> ApiVersionsResponse:
    if ctx.header.api_version >= 3:
        ctx.session.client_software_name = request.client_software_name
        ctx.session.client_software_version = request.client_software_version
    # The optional feature tags are left out: no feature gates a client behaviour we serve,
    # and kcat 1.7 (librdkafka 2.0) cannot parse a v3 response that carries them.
    return ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=advertised_api_versions())


def unsupported_version_response(
    header: RequestHeader,
) -> tuple[RequestHeader, ApiVersionsResponse]:
    """A v0 answer naming what we support, so the client can retry with a version we speak."""
    v0_header = RequestHeader(
        api_key=ApiKey.API_VERSIONS,
        api_version=0,
        correlation_id=header.correlation_id,
        client_id=header.client_id,
    )
    return v0_header, ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=advertised_api_versions()
    )


HANDLERS = {ApiKey.API_VERSIONS: handle_api_versions}
