"""DescribeAcls, CreateAcls and DeleteAcls with no authorizer: SECURITY_DISABLED, as Kafka.

A Kafka broker without `authorizer.class.name` answers every ACL request this way, and
clients rely on it: MirrorMaker 2 turns its ACL sync off on SecurityDisabledException,
kafka-acls.sh and admin UIs report that ACLs are off instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from streamhouse.broker.connection import RequestContext
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    CreateAclsRequest,
    CreateAclsResponse,
    DeleteAclsRequest,
    DeleteAclsResponse,
    DescribeAclsRequest,
    DescribeAclsResponse,
)

NO_AUTHORIZER = "No Authorizer is configured on the broker"

_R = TypeVar("_R")


async def handle_describe_acls(
    ctx: RequestContext, request: DescribeAclsRequest
) -> DescribeAclsResponse:
    return DescribeAclsResponse(
        error_code=ErrorCode.SECURITY_DISABLED, error_message=NO_AUTHORIZER
    )


def _refusals(result_type: Callable[..., _R], count: int) -> list[_R]:
    return [
        result_type(error_code=ErrorCode.SECURITY_DISABLED, error_message=NO_AUTHORIZER)
        for _ in range(count)
    ]


async def handle_create_acls(ctx: RequestContext, request: CreateAclsRequest) -> CreateAclsResponse:
    return CreateAclsResponse(
        results=_refusals(CreateAclsResponse.AclCreationResult, len(request.creations))
    )


async def handle_delete_acls(ctx: RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse:
    return DeleteAclsResponse(
        filter_results=_refusals(DeleteAclsResponse.DeleteAclsFilterResult, len(request.filters))
    )


HANDLERS = {
    ApiKey.DESCRIBE_ACLS: handle_describe_acls,
    ApiKey.CREATE_ACLS: handle_create_acls,
    ApiKey.DELETE_ACLS: handle_delete_acls,
}
