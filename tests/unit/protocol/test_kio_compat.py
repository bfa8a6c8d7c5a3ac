"""Cross-check against kio, generated independently from the same Kafka specs.

For every request/response version kio defines: bytes kio writes decode with our codec to
the same values, and our codec writes them back byte for byte. Versions kio lacks (its
spec snapshot differs from ours) are skipped and listed by test_kio_coverage_is_reported.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streamhouse.protocol.codec import decode_message, encode_message
from streamhouse.protocol.messages import REQUEST_TYPES, RESPONSE_TYPES

kio_index = pytest.importorskip("kio.index")
kio_serial = pytest.importorskip("kio.serial")
from kio.static.constants import EntityType  # noqa: E402
from kio.static.primitive import Records  # noqa: E402

st.register_type_strategy(Records, st.binary(max_size=24).map(Records))


def _kio_class(cls: type, version: int) -> type | None:
    kind = EntityType.request if cls.__name__.endswith("Request") else EntityType.response
    try:
        module = kio_index.load_payload_module(cls.API_KEY, version, kind)
    except Exception:
        return None
    return getattr(module, cls.__name__, None)


# kio's spec snapshot differs from ours for these; the reason is the value.
LAYOUT_DIFFERS = {"ReadShareGroupStateSummaryResponse": "kio's v0 has an extra LeaderEpoch"}
NAMES_DIFFER = {"VoteRequest": "our spec renamed ReplicaEpoch/ReplicaId to Candidate*"}
# kio's strategies for these nest so deep that drawing one example takes minutes.
TOO_SLOW = {"AssignReplicasToDirsRequest", "AssignReplicasToDirsResponse"}
CASES = []
MISSING = []
for _cls in (*REQUEST_TYPES.values(), *RESPONSE_TYPES.values()):
    for _v in range(_cls.VALID_VERSIONS[0], _cls.VALID_VERSIONS[1] + 1):
        _k = _kio_class(_cls, _v)
        if _cls.__name__ in LAYOUT_DIFFERS or _cls.__name__ in TOO_SLOW or _k is None:
            MISSING.append(f"{_cls.__name__} v{_v}")
        else:
            CASES.append((_cls, _v, _k))


def normalise(value: Any) -> Any:
    """kio value -> the plain value our classes hold (ms ints, lists, field dicts)."""
    if dataclasses.is_dataclass(value):
        return {f.name: normalise(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "unknown_tagged_fields"}
    if isinstance(value, tuple | list):
        return [normalise(v) for v in value]
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if value is None or isinstance(value, bool | float | str | bytes | uuid.UUID):
        return value
    if isinstance(value, int):
        return int(value)
    return value


def _attr(ours: Any, name: str) -> Any:
    """kio turns *_ms fields into timedeltas and drops the suffix; map the name back."""
    for candidate in (name, name + "_ms"):
        if hasattr(ours, candidate):
            return getattr(ours, candidate)
    raise AssertionError(f"{type(ours).__qualname__} has no field like {name}")


def _ours_like(kio_value: Any, ours: Any) -> Any:
    """Our value shaped like kio's normalised one, field by field."""
    if isinstance(kio_value, dict) and dataclasses.is_dataclass(ours):
        return {k: _ours_like(v, _attr(ours, k)) for k, v in kio_value.items()}
    if isinstance(kio_value, list) and isinstance(ours, list):
        return [_ours_like(k, o) for k, o in zip(kio_value, ours, strict=False)] + (
            ["<extra>"] * (len(ours) - len(kio_value)))
    if kio_value is None and (ours == uuid.UUID(int=0) or ours == -1):
        return None  # kio spells the zero uuid and a -1 timestamp as None
    return normalise(ours)


def test_kio_coverage_is_reported() -> None:
    assert CASES, "kio defines none of our message versions"
    print(f"kio lacks {len(MISSING)} of our versions: {', '.join(MISSING)}")


# kio's strategies build large nested values: no explain phase, or a failure takes minutes
SETTINGS = settings(max_examples=5, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize(("cls", "version", "kio_cls"), CASES,
                         ids=[f"{c.__name__}-v{v}" for c, v, _ in CASES])
def test_kio_bytes_decode_equal_and_reencode_identical(cls: type, version: int,
                                                       kio_cls: type) -> None:
    writer = kio_serial.entity_writer(kio_cls)

    @SETTINGS
    @given(st.from_type(kio_cls))
    def check(instance: Any) -> None:
        buf = io.BytesIO()
        writer(buf, instance)
        wire = buf.getvalue()
        ours = decode_message(cls, version, wire)
        if cls.__name__ not in NAMES_DIFFER:
            expected = normalise(instance)
            assert _ours_like(expected, ours) == expected
        assert encode_message(ours, version) == wire

    check()
