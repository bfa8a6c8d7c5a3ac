"""Hypothesis strategies and helpers shared by the record codec tests."""

from __future__ import annotations

from hypothesis import strategies as st

from streamhouse.protocol.records import Header, Record

CODECS = [0, 1, 2, 3, 4]

payloads = st.none() | st.binary(max_size=200)
headers = st.lists(
    st.builds(Header, st.text(max_size=12), st.none() | st.binary(max_size=30)), max_size=3
)
# Timestamps span the range real clients use, in any order within a batch.
timestamps = st.integers(min_value=-1, max_value=2**42)


@st.composite
def record_lists(draw, *, min_size: int = 1, max_size: int = 20, gaps: bool = False):
    """Records with increasing absolute offsets starting at the drawn base offset."""
    base_offset = draw(st.integers(min_value=0, max_value=2**40))
    count = draw(st.integers(min_value=min_size, max_value=max_size))
    offset = base_offset
    records = []
    for _ in range(count):
        records.append(
            Record(offset, draw(timestamps), draw(payloads), draw(payloads), draw(headers))
        )
        offset += 1 + (draw(st.integers(0, 5)) if gaps else 0)
    return base_offset, records


def as_tuples(records) -> list[tuple]:
    """Records (ours or a client library's) as comparable tuples."""
    out = []
    for r in records:
        hdrs = [
            (h.key, _bytes(h.value)) if isinstance(h, Header) else (h[0], _bytes(h[1]))
            for h in r.headers
        ]
        out.append((r.offset, r.timestamp, _bytes(r.key), _bytes(r.value), hdrs))
    return out


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)
