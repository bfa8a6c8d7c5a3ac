"""One Kafka request over a plain socket, for what no client library can send."""

from __future__ import annotations

import socket
import struct
from typing import Any

from streamhouse.protocol.codec import decode_response, encode_request


def kafka_call(port: int, request: Any, version: int, timeout_s: float = 10.0) -> Any:
    """Send `request` at `version` to 127.0.0.1:port and return the decoded response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(encode_request(request, version, 1, "streamhouse-tests"))
        stream = sock.makefile("rb")
        (size,) = struct.unpack(">i", stream.read(4))
        _, response = decode_response(type(request).API_KEY, version, memoryview(stream.read(size)))
    return response
