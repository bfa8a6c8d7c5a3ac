"""Reading the "consumer" embedded protocol: the subscription a classic consumer sends in JoinGroup.

Its bytes are a ConsumerProtocolSubscription prefixed by a 2-byte version. The broker
relays them untouched; it reads them only to know which topics a group subscribes to
(OffsetDelete answers GROUP_SUBSCRIBED_TO_TOPIC for those).
"""

from __future__ import annotations

import struct

from streamhouse.protocol.codec import decode_message
from streamhouse.protocol.messages import ConsumerProtocolSubscription

_MAX_KNOWN_VERSION = 3


def subscription_topics(metadata: bytes) -> list[str] | None:
    """The topics of a consumer's subscription, or None when the bytes cannot be read."""
    if len(metadata) < 2:
        return None
    (version,) = struct.unpack_from(">h", metadata, 0)
    if version < 0:
        return None
    body = memoryview(metadata)[2:]
    try:
        # A newer version starts with the fields we know; read as our newest and stop there.
        message = decode_message(
            ConsumerProtocolSubscription, min(version, _MAX_KNOWN_VERSION), body
        )
    except Exception:
        if version <= _MAX_KNOWN_VERSION:
            return None
        try:
            message = _decode_prefix(body)
        except Exception:
            return None
    return list(message.topics)


def _decode_prefix(body: memoryview) -> ConsumerProtocolSubscription:
    """Topics only (the first field of every version), for versions newer than ours."""
    (count,) = struct.unpack_from(">i", body, 0)
    pos = 4
    topics = []
    for _ in range(max(count, 0)):
        (length,) = struct.unpack_from(">h", body, pos)
        pos += 2
        topics.append(bytes(body[pos : pos + length]).decode())
        pos += length
    return ConsumerProtocolSubscription(topics=topics)
