"""Tuning knobs of the storage engine, with defaults chosen per object store kind."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StorageSettings:
    seal_bytes: int = 4 * MiB
    """Seal the open segment as soon as it holds this many bytes."""
    seal_ms: float = 5.0
    """Seal the open segment this long after its first append, however small it is."""
    seal_when_idle: bool = True
    """While the stores are idle (fewer than `seal_at_once_below` segments in flight), seal
    at once, at the end of the event-loop turn, rather than `seal_ms` after the first
    append; but never sooner than `seal_gap_ms` after the previous seal. Lowest latency
    for the file store; off for S3, where every PUT is billed."""
    seal_at_once_below: int = 1
    """With seal_when_idle: the stores count as idle while fewer segments than this are in
    flight. 1 means only when nothing is, so a busy broker batches appends for seal_ms
    (fewer PUTs, fsyncs and transactions per record) while a quiet one answers at once."""
    seal_gap_ms: float = 5.0
    """With seal_when_idle: the least time between a seal and the next one made for
    idleness (`seal_ms` still bounds an append's wait). Without it, requests that arrive
    one at a time, each after the previous one's segment was stored, would each pay a
    PUT, fsyncs and a commit of their own."""
    seal_hold_bytes: int = 64 * 1024
    """With seal_when_idle: an open segment this large (or of `seal_hold_records`), with
    records from a producer that has further requests in flight, is not sealed for
    idleness but `seal_hold_ms` after its first append (or at `seal_bytes`). Such a
    producer batches for throughput and pipelines; holding its segment a little longer
    stores several of its requests with one PUT and one commit. Small requests
    (latency-minded producers) and producers that wait for each answer before sending
    more are still sealed at once."""
    seal_hold_records: int = 512
    """See `seal_hold_bytes`: the same for a segment of this many records, however few bytes
    they take once compressed. A compressed request of small records can be a tenth of
    `seal_hold_bytes` and still come from a producer batching thousands of records."""
    seal_hold_ms: float = 25.0
    """See `seal_hold_bytes`; 0 turns holding off."""
    seal_ready_bytes: int = 0
    """An open segment this large, whose producers wait for each answer before sending
    more (none has another request in flight), is sealed at once while the stores are idle
    (fewer than `seal_at_once_below` segments in flight), without waiting for `seal_ms` or
    `seal_gap_ms`: waiting would not spread the cost of its PUT over many more bytes, only
    hold such a producer to one request per `seal_ms`. Pipelining producers keep filling
    segments up to `seal_ms` or `seal_bytes`. 0 (the default for the file store, which
    seals at once when idle anyway) turns this off."""
    cache_bytes: int = 128 * MiB
    """Upper bound of record bytes kept in memory for reads (fresh segments and read ranges)."""
    max_uploads_in_flight: int = 4
    """Sealed segments uploaded concurrently; they are still committed in seal order."""
    max_sealed_pending: int = 16
    """Sealed but not yet committed segments before appends wait (back-pressure)."""
    tail_index_chunks: int = 256
    """Recently committed chunks remembered per partition so tail fetches skip SQL."""
    gc_grace_ms: int = 10 * 60 * 1000
    """An object nobody committed is only garbage once it is this old."""


def defaults_for(store_url: str) -> StorageSettings:
    """Defaults for the store named by `store_url` (file://, s3://, memory://).

    A local file PUT costs a write and two fsyncs (file and directory: 1-10 ms
    depending on the disk) and a PUT is free, so a segment is sealed at once
    when nothing is in flight and the last seal is 5 ms old (group commit:
    whatever arrives meanwhile forms the next segment), and otherwise after
    5 ms or 4 MiB: a lone request waits only for the fsyncs, and a steady
    stream of them, even one request at a time, costs at most one PUT, fsync
    pair and SQL transaction per 5 ms rather than one per request.

    An S3 PUT costs tens of milliseconds and is billed per request, so a
    segment is sealed after 200 ms or 8 MiB: at most ~5 PUTs/s per idle-ish
    broker, 8 MiB objects at full speed, and 8 uploads in flight hide PUT
    latency at high rates while commits stay in seal order. A segment of 512 KiB
    from a producer that sends one request at a time is sealed as soon as nothing
    is in flight, so that producer is not held to five requests a second; PUTs
    stay at most one per 512 KiB stored.

    Memory: what is sealed but not committed (max_sealed_pending x seal_bytes)
    plus the cache bound the broker's record bytes; both stay near 100 MiB so a
    broker under full load keeps within a few hundred MB of RSS.
    """
    scheme = store_url.split("://", 1)[0].lower() if "://" in store_url else "file"
    if scheme in ("s3", "http", "https"):
        return StorageSettings(
            seal_bytes=8 * MiB,
            seal_ms=200.0,
            seal_when_idle=False,
            seal_ready_bytes=512 * 1024,
            max_uploads_in_flight=8,
            max_sealed_pending=12,
            cache_bytes=96 * MiB,
        )
    if scheme == "memory":
        return StorageSettings(seal_bytes=4 * MiB, seal_ms=1.0, seal_hold_ms=0.0)
    return StorageSettings()
