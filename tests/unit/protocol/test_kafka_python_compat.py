"""Cross-check against kafka-python's own spec-driven protocol classes.

For every message and version both define, kafka-python parses our encoding and writes it
back byte for byte (so it saw the same fields), and we decode its output to the same value.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from hypothesis import HealthCheck, given, settings

from streamhouse.protocol.codec import decode_message, encode_message
from streamhouse.protocol.messages import REQUEST_TYPES, RESPONSE_TYPES

from .strategies import message_strategy

kp_protocol = pytest.importorskip("kafka.protocol")
from kafka.protocol.api_message import ApiMessage  # noqa: E402

for _mod in pkgutil.walk_packages(kp_protocol.__path__, "kafka.protocol."):
    if ".old" not in _mod.name:
        importlib.import_module(_mod.name)


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


# kafka-python's DeleteTopicsRequest wrapper cannot encode a decoded instance (no _header).
KP_BROKEN = {"DeleteTopicsRequest"}
KP = {c.__name__: c for c in _subclasses(ApiMessage) if getattr(c, "_class_version", 0) is None}
CASES = []
for _cls in (*REQUEST_TYPES.values(), *RESPONSE_TYPES.values()):
    _kp = KP.get(_cls.__name__)
    if _kp is None or _cls.__name__ in KP_BROKEN:
        continue
    _hi = min(_cls.VALID_VERSIONS[1], _kp.max_version)
    CASES += [(_cls, _v, _kp) for _v in range(_cls.VALID_VERSIONS[0], _hi + 1)]

SETTINGS = settings(max_examples=5, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def test_kafka_python_overlap_is_substantial() -> None:
    assert len({c.__name__ for c, _, _ in CASES}) >= 50


@pytest.mark.parametrize(("cls", "version", "kp_cls"), CASES,
                         ids=[f"{c.__name__}-v{v}" for c, v, _ in CASES])
def test_kafka_python_reads_and_rewrites_our_bytes(cls: type, version: int,
                                                   kp_cls: type) -> None:
    @SETTINGS
    @given(message_strategy(cls, version, unknown_tags=False))
    def check(msg: object) -> None:
        if cls.__name__ == "ApiVersionsResponse":
            msg.error_code = 0  # kafka-python reads any failed ApiVersions response as v0
        wire = encode_message(msg, version)
        theirs = kp_cls[version].decode(wire)
        rewritten = bytes(theirs.encode())
        assert rewritten == wire
        assert decode_message(cls, version, rewritten) == msg

    check()
