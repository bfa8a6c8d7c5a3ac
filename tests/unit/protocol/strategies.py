"""Hypothesis strategies that build a message instance valid for one version, from the schema."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from streamhouse.protocol.messages import DATA_TYPES, REQUEST_TYPES, RESPONSE_TYPES
from streamhouse.protocol.schema_data import SCHEMAS

_INTS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
UNKNOWN_TAG_BASE = 100  # above every tag the specs use


def _in(rng: tuple[int, int] | None, version: int) -> bool:
    return rng is not None and rng[0] <= version <= rng[1]


def all_message_versions() -> list[tuple[type, int]]:
    out = []
    for cls in (*REQUEST_TYPES.values(), *RESPONSE_TYPES.values(), *DATA_TYPES.values()):
        lo, hi = cls.VALID_VERSIONS
        out += [(cls, v) for v in range(lo, hi + 1)]
    return out


def _scalar(ftype: str) -> st.SearchStrategy[Any]:
    if ftype in _INTS:
        bits = _INTS[ftype]
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return {
        "uint16": st.integers(0, 0xFFFF),
        "uint32": st.integers(0, 0xFFFFFFFF),
        "bool": st.booleans(),
        "float64": st.floats(allow_nan=False),
        "string": st.text(max_size=12),
        "bytes": st.binary(max_size=12),
        "records": st.binary(max_size=24),
        "uuid": st.uuids(),
    }[ftype]


def message_strategy(cls: type, version: int, unknown_tags: bool = True
                     ) -> st.SearchStrategy[Any]:
    schema = SCHEMAS[cls.__name__]
    flexible = _in(schema["flexible"], version)

    def struct(target: type, fields: list[tuple]) -> st.SearchStrategy[Any]:
        kwargs: dict[str, st.SearchStrategy[Any]] = {}
        for _name, attr, ftype, versions, nullable, _tag, _tagged, _default in fields:
            if not _in(versions, version):
                continue
            kwargs[attr] = value(ftype, _in(nullable, version))
        if flexible and unknown_tags:
            kwargs["unknown_tagged_fields"] = st.lists(
                st.tuples(st.integers(UNKNOWN_TAG_BASE, 5000), st.binary(max_size=6)),
                max_size=2, unique_by=lambda t: t[0]).map(sorted)
        return st.builds(target, **kwargs)

    def value(ftype: str, nullable: bool) -> st.SearchStrategy[Any]:
        base = ftype.removeprefix("[]")
        if base in schema["structs"]:
            inner = struct(getattr(cls, base), schema["structs"][base])
        else:
            inner = _scalar(base)
        if ftype.startswith("[]"):
            inner = st.lists(inner, max_size=3)
        return st.none() | inner if nullable else inner

    return struct(cls, schema["fields"])
