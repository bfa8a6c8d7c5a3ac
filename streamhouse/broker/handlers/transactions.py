"""Producer ids and transactions: InitProducerId and the transaction coordinator's APIs."""

from __future__ import annotations

from streamhouse.broker.connection import RequestContext
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import InitProducerIdRequest, InitProducerIdResponse


async def handle_init_producer_id(
    ctx: RequestContext, request: InitProducerIdRequest
) -> InitProducerIdResponse:
    metadata = ctx.broker.metadata
    assert metadata is not None
    if request.transactional_id is None:
        # Kafka hands an idempotent producer a fresh id whatever id/epoch it sends (v3+):
        # its sequence state starts over at epoch 0 on every partition.
        producer_id = await metadata.allocate_producer_id()
        return InitProducerIdResponse(
            error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0
        )
    return InitProducerIdResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)


HANDLERS = {ApiKey.INIT_PRODUCER_ID: handle_init_producer_id}
