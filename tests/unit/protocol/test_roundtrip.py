"""Every message in every valid version survives encode -> decode -> encode unchanged."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamhouse.protocol.codec import ProtocolError, decode_message, encode_message

from .strategies import all_message_versions, message_strategy

CASES = all_message_versions()
IDS = [f"{cls.__name__}-v{v}" for cls, v in CASES]
FAST = settings(max_examples=8, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize(("cls", "version"), CASES, ids=IDS)
def test_round_trip_is_lossless_and_byte_identical(cls: type, version: int) -> None:
    @FAST
    @given(message_strategy(cls, version))
    def check(msg: object) -> None:
        wire = encode_message(msg, version)
        decoded = decode_message(cls, version, wire)
        assert decoded == msg
        assert encode_message(decoded, version) == wire

    check()


@pytest.mark.parametrize(("cls", "version"), CASES, ids=IDS)
def test_truncated_or_corrupted_bytes_raise_only_protocol_error(cls: type, version: int) -> None:
    @FAST
    @given(message_strategy(cls, version), st.data())
    def check(msg: object, data: st.DataObject) -> None:
        wire = encode_message(msg, version)
        if wire:
            cut = data.draw(st.integers(0, len(wire) - 1))
            with pytest.raises(ProtocolError):
                decode_message(cls, version, wire[:cut])
            flipped = bytearray(wire)
            at = data.draw(st.integers(0, len(wire) - 1))
            flipped[at] ^= data.draw(st.integers(1, 255))
            with contextlib.suppress(ProtocolError):
                decode_message(cls, version, bytes(flipped))
        noise = data.draw(st.binary(max_size=64))
        with contextlib.suppress(ProtocolError):
            decode_message(cls, version, noise)

    check()
