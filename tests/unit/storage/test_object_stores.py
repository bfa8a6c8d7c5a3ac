"""One ObjectStore contract checked against every backend (file, memory, SeaweedFS S3),
then what each backend promises beyond it: crash-safe files, S3 retries through an outage."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from streamhouse.storage import ObjectNotFound, ObjectStore, ObjectStoreError, open_object_store
from streamhouse.storage.file_store import DIRECT_BLOCK, TEMP_DIR, FileObjectStore
from streamhouse.storage.keys import SPREAD_PREFIXES, spread_key
from streamhouse.storage.memory_store import MemoryObjectStore
from streamhouse.storage.s3_store import S3ObjectStore
from tests.support.fixtures import TEST_BUCKET, new_s3_store
from tests.support.ports import free_port
from tests.support.seaweedfs import SeaweedFS

MiB = 1024 * 1024


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes whose every position is distinguishable, so an off-by-one read shows."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // len(block) + 1))[:size]


async def keys_of(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


@pytest.fixture(
    params=["file", "file-buffered", "memory", pytest.param("s3", marks=pytest.mark.s3)]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "file":
        backend: ObjectStore = FileObjectStore(tmp_path / "objects")
    elif request.param == "file-buffered":
        backend = FileObjectStore(tmp_path / "objects", direct_io=False)
    elif request.param == "memory":
        backend = MemoryObjectStore()
    else:
        backend = new_s3_store(request.getfixturevalue("seaweedfs_credentials"))
    yield backend
    await backend.close()


# -- the contract ------------------------------------------------------------------------------


async def test_get_range_returns_exactly_the_requested_bytes(store: ObjectStore) -> None:
    data = pattern(10_000)
    await store.put("seg", data)
    assert await store.get_range("seg", 0, 100) == data[:100]
    assert await store.get_range("seg", 4321, 1234) == data[4321:5555]
    assert await store.get_range("seg", 9_900, 100) == data[9_900:]
    assert await store.get_range("seg", 0, 10_000) == data


async def test_zero_length_and_past_the_end_ranges(store: ObjectStore) -> None:
    await store.put("seg", b"0123456789")
    assert await store.get_range("seg", 3, 0) == b""
    assert await store.get_range("seg", 10, 0) == b""
    assert await store.get_range("seg", 8, 100) == b"89"
    assert await store.get_range("seg", 10, 5) == b""
    assert await store.get_range("seg", 50, 5) == b""


async def test_empty_object_round_trips(store: ObjectStore) -> None:
    await store.put("empty", b"")
    assert await store.get_range("empty", 0, 10) == b""
    assert [(i.key, i.size) async for i in store.list()] == [("empty", 0)]


async def test_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get_range("no/such/object", 0, 10)
    with pytest.raises(ObjectNotFound):
        await store.get_range("no/such/object", 0, 0)


async def test_overwrite_replaces_the_whole_object(store: ObjectStore) -> None:
    await store.put("k", pattern(5000, seed=1))
    assert await store.get_range("k", 0, 10) == pattern(10, seed=1)
    await store.put("k", b"short")
    assert await store.get_range("k", 0, 5000) == b"short"
    assert [(i.key, i.size) async for i in store.list()] == [("k", 5)]


async def test_delete_removes_object_and_missing_delete_is_fine(store: ObjectStore) -> None:
    await store.put("a/b", b"x")
    assert await store.get_range("a/b", 0, 1) == b"x"
    await store.delete("a/b")
    with pytest.raises(ObjectNotFound):
        await store.get_range("a/b", 0, 1)
    await store.delete("a/b")
    await store.delete("never/existed")
    assert await keys_of(store) == []


async def test_list_filters_by_prefix_in_key_order(store: ObjectStore) -> None:
    sizes = {"b/4": 4, "a/2": 2, "ab/3": 3, "a/1": 1, "a/sub/5": 5, "c": 6}
    for key, size in sizes.items():
        await store.put(key, b"z" * size)
    assert await keys_of(store) == sorted(sizes)
    assert await keys_of(store, "a/") == ["a/1", "a/2", "a/sub/5"]
    assert await keys_of(store, "a") == ["a/1", "a/2", "a/sub/5", "ab/3"]
    assert await keys_of(store, "a/s") == ["a/sub/5"]
    assert await keys_of(store, "nothing") == []
    infos = [info async for info in store.list()]
    assert {info.key: info.size for info in infos} == sizes
    assert all(info.last_modified_ms > 1_600_000_000_000 for info in infos)


async def test_keys_with_slashes_are_independent_objects(store: ObjectStore) -> None:
    keys = ["x/y/z/deep", "x/y/z/deep2", "x/y/shallow", spread_key("topic-0/00000042.seg")]
    for i, key in enumerate(keys):
        await store.put(key, f"object {i}".encode())
    for i, key in enumerate(keys):
        assert await store.get_range(key, 0, 100) == f"object {i}".encode()
    assert await keys_of(store, "x/y/z/") == ["x/y/z/deep", "x/y/z/deep2"]


async def test_8_mib_object_round_trips(store: ObjectStore) -> None:
    data = pattern(8 * MiB, seed=3)
    await store.put("big/segment", data)
    assert await store.get_range("big/segment", 0, 8 * MiB) == data
    middle = 4 * MiB - 17
    assert await store.get_range("big/segment", middle, 65_536) == data[middle : middle + 65_536]
    assert [(i.key, i.size) async for i in store.list("big/")] == [("big/segment", 8 * MiB)]


async def test_100_concurrent_puts_all_land(store: ObjectStore) -> None:
    keys = [spread_key(f"concurrent-{i}") for i in range(100)]
    await asyncio.gather(*(store.put(key, pattern(1000 + i, seed=i)) for i, key in enumerate(keys)))
    reads = await asyncio.gather(*(store.get_range(key, 0, 5000) for key in keys))
    assert reads == [pattern(1000 + i, seed=i) for i in range(100)]
    assert sorted(await keys_of(store)) == sorted(keys)


async def test_put_accepts_bytearray_and_memoryview(store: ObjectStore) -> None:
    buffer = bytearray(b"..payload..")
    await store.put("ba", buffer)
    await store.put("mv", memoryview(buffer)[2:9])
    buffer[:] = b"overwritten"  # the store must have copied or written it already
    assert await store.get_range("ba", 0, 100) == b"..payload.."
    assert await store.get_range("mv", 0, 100) == b"payload"


@pytest.mark.parametrize("method", ["put_parts", "put_new_parts"])
async def test_put_parts_stores_the_concatenation(store: ObjectStore, method: str) -> None:
    """The write path hands a segment over as several buffers; the object is their sum."""
    # Empty parts, more than one writev takes, and large parts between runs of small ones.
    parts = [bytes([i % 256]) * (70_000 if i % 150 == 1 else i * 37 % 300) for i in range(700)]
    await getattr(store, method)("segs/parts", [memoryview(bytearray(p)) for p in parts])
    whole = b"".join(parts)
    assert await store.get_range("segs/parts", 0, len(whole) + 10) == whole


async def test_a_buffer_returned_by_a_new_put_is_the_object_and_the_callers_to_patch(
    store: ObjectStore,
) -> None:
    """The write path keeps what a store gathered for its cache and patches offsets there."""
    parts = [memoryview(bytearray(pattern(5000, seed=1))), b"tail", pattern(2 * DIRECT_BLOCK + 3)]
    whole = b"".join(parts)
    stored = await store.put_new_parts("segs/new", parts)
    if stored is not None:
        assert stored == whole and not stored.readonly
        stored[:4] = b"XXXX"
    assert await store.get_range("segs/new", 0, len(whole)) == whole


@pytest.mark.parametrize("key", ["", "/abs/key", "../escape", "a/../../escape", "a//b", "a/./b"])
async def test_invalid_keys_are_rejected_before_any_io(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, b"x")
    with pytest.raises(ValueError):
        await store.get_range(key, 0, 1)
    with pytest.raises(ValueError):
        await store.delete(key)


async def test_negative_range_is_rejected(store: ObjectStore) -> None:
    await store.put("k", b"abc")
    with pytest.raises(ValueError):
        await store.get_range("k", -1, 2)
    with pytest.raises(ValueError):
        await store.get_range("k", 0, -2)


async def test_prepared_prefixes_hold_nothing_until_put_and_take_puts(store: ObjectStore) -> None:
    await store.prepare(["3f", "a0"])
    await store.prepare(["3f", "a0"])  # again, as every restart does
    assert await keys_of(store) == []
    await store.put_new_parts("3f/segment", [b"new ", b"segment"])
    await store.put("a0/object", b"replaced")
    await store.put("a0/object", b"object")
    assert await keys_of(store) == ["3f/segment", "a0/object"]
    assert await store.get_range("3f/segment", 0, 100) == b"new segment"


async def test_ping_answers(store: ObjectStore) -> None:
    await store.ping()


# -- keys and the URL factory ------------------------------------------------------------------


def test_spread_key_is_deterministic_and_spreads() -> None:
    assert spread_key("topic/0/42.seg") == spread_key("topic/0/42.seg")
    prefix, name = spread_key("topic/0/42.seg").split("/", 1)
    assert name == "topic/0/42.seg"
    assert len(prefix) == 2 and int(prefix, 16) >= 0
    prefixes = {spread_key(f"segment-{i}").split("/", 1)[0] for i in range(2000)}
    assert len(prefixes) > 200  # 256 possible; consecutive names must not share one


def test_open_object_store_understands_each_scheme(tmp_path: Path, monkeypatch: Any) -> None:
    absolute = open_object_store(f"file://{tmp_path}/abs")
    assert isinstance(absolute, FileObjectStore) and absolute.root == tmp_path / "abs"
    monkeypatch.chdir(tmp_path)
    relative = open_object_store("file://rel/dir")
    assert isinstance(relative, FileObjectStore) and relative.root == tmp_path / "rel" / "dir"
    buffered = open_object_store(f"file://{tmp_path}/b?direct_io=false")
    assert isinstance(buffered, FileObjectStore) and buffered.root == tmp_path / "b"
    assert not buffered.direct_io and absolute.direct_io
    assert isinstance(open_object_store("memory://"), MemoryObjectStore)
    s3 = open_object_store(
        "s3://my-bucket/some/prefix", endpoint_url="http://127.0.0.1:1", path_style=True
    )
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.path_style) == (
        "my-bucket",
        "some/prefix/",
        "http://127.0.0.1:1",
        True,
    )
    assert open_object_store("S3://b").prefix == ""  # type: ignore[attr-defined]
    from_query = open_object_store("s3://b/p?region=eu-west-1&endpoint=http://h:9&path_style=yes")
    assert isinstance(from_query, S3ObjectStore)
    assert (from_query.region, from_query.endpoint_url, from_query.path_style) == (
        "eu-west-1",
        "http://h:9",
        True,
    )


@pytest.mark.parametrize(
    "url",
    [
        "gs://bucket",
        "ftp://x",
        "no-scheme",
        "file://",
        "s3:///p",
        "s3://b?colour=red",
        "s3://b?path_style=maybe",
        "file:///tmp/x?colour=red",
        "file:///tmp/x?direct_io=maybe",
    ],
)
def test_open_object_store_rejects_unknown_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_object_store(url)


# -- file store --------------------------------------------------------------------------------


@pytest.mark.parametrize("direct_io", [True, False])
async def test_file_objects_of_any_length_read_back_exactly_over_any_range(
    tmp_path: Path, direct_io: bool
) -> None:
    # Direct I/O writes whole 4 KiB blocks from one aligned buffer and the rest through the
    # page cache: lengths and ranges on either side of those boundaries, parts straddling them.
    store = FileObjectStore(tmp_path, direct_io=direct_io)
    block, staging = DIRECT_BLOCK, MiB
    for length in [1, block - 1, block, block + 1, staging - 1, staging, 2 * staging + 4097]:
        data = pattern(length, seed=length % 251)
        cuts = sorted({0, 1, block // 2, block + 3, staging - 5, staging + 1, length} & set(
            range(length + 1)
        ))
        parts = [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
        stored = await store.put_new_parts(f"o/{length}", parts)
        assert (stored == data) if direct_io else (stored is None)
        assert await store.get_range(f"o/{length}", 0, length) == data
        for start in {0, 1, block - 1, block, length // 3, length - 1}:
            for size in {1, block, block + 2, length}:
                got = await store.get_range(f"o/{length}", start, size)
                assert got == data[start : start + size], (length, start, size)
        writable = memoryview(await store.get_range(f"o/{length}", 0, length))
        assert not writable.readonly  # the read path patches offsets in place
    assert (tmp_path / "o" / str(2 * staging + 4097)).stat().st_size == 2 * staging + 4097
    await store.close()


@pytest.fixture
def ramfs(tmp_path: Path) -> Iterator[Path]:
    """A file system without direct I/O (ramfs refuses O_DIRECT); mounting needs root."""
    point = tmp_path / "ramfs"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "ramfs", "none", str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a ramfs here: {mounted.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


async def test_file_store_falls_back_to_the_page_cache_where_direct_io_is_refused(
    ramfs: Path,
) -> None:
    store = FileObjectStore(ramfs / "objects")
    assert store.direct_io
    data = pattern(3 * DIRECT_BLOCK + 5)
    await store.put_new_parts("seg/1", [data[:7], data[7:]])
    await store.put("other", b"small object")
    assert not store.direct_io
    assert await store.get_range("seg/1", 0, len(data)) == data
    assert await store.get_range("seg/1", DIRECT_BLOCK - 3, 10) == data[DIRECT_BLOCK - 3 :][:10]
    assert await store.get_range("other", 6, 100) == b"object"
    # Only the objects are there: a file created before the refusal did not stay behind.
    assert await keys_of(store) == ["other", "seg/1"]
    await store.close()

    reopened = FileObjectStore(ramfs / "objects")  # refused on its first read this time
    assert await reopened.get_range("seg/1", 1, 4) == data[1:5]
    assert not reopened.direct_io
    await reopened.close()


async def test_file_put_leaves_no_temp_files(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await asyncio.gather(*(store.put(f"p/{i}", b"data") for i in range(20)))
    assert list((tmp_path / TEMP_DIR).iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(str(i) for i in range(20))


async def test_file_crash_mid_put_never_exposes_a_partial_object(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("seg/1", b"complete old version")
    # What a crash between write and rename leaves: a temp file holding part of the new data.
    leftover = tmp_path / TEMP_DIR / "0123456789abcdef.tmp"
    leftover.write_bytes(b"partial new ver")
    orphan = tmp_path / TEMP_DIR / "fedcba9876543210.tmp"
    orphan.write_bytes(b"partial of an object never committed")

    restarted = FileObjectStore(tmp_path)
    assert await keys_of(restarted) == ["seg/1"]
    assert await restarted.get_range("seg/1", 0, 100) == b"complete old version"
    assert await restarted.cleanup_temp() == 2
    assert not leftover.exists() and not orphan.exists()
    assert await restarted.cleanup_temp() == 0
    assert await keys_of(restarted) == ["seg/1"]


async def test_file_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = FileObjectStore(root)
    for key in ["../outside", "a/../../outside", "/etc/passwd", f"{TEMP_DIR}/x"]:
        with pytest.raises(ValueError):
            await store.put(key, b"x")
    assert await keys_of(store, "../") == []
    assert not (tmp_path / "outside").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # not even the root was created


async def test_file_read_descriptors_stay_bounded(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path, max_open_files=4)
    for i in range(40):
        await store.put(f"k/{i}", bytes([i]) * 10)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(2):
        for i in range(40):
            assert await store.get_range(f"k/{i}", 0, 10) == bytes([i]) * 10
    assert len(os.listdir("/proc/self/fd")) - before <= 4
    await store.close()
    assert len(os.listdir("/proc/self/fd")) <= before


async def test_file_reads_see_overwrites_and_deletes_despite_cached_descriptors(
    tmp_path: Path,
) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("k", b"first")
    assert await store.get_range("k", 0, 10) == b"first"
    await store.put("k", b"second")
    assert await store.get_range("k", 0, 10) == b"second"
    await store.delete("k")
    with pytest.raises(ObjectNotFound):
        await store.get_range("k", 0, 10)
    # A reader racing a writer gets one whole version, and no stale descriptor survives.
    previous = b"v" * 500
    await store.put("k", previous)
    for round_ in range(20):
        data = bytes([round_]) * 500
        seen, _ = await asyncio.gather(store.get_range("k", 0, 500), store.put("k", data))
        assert seen in (previous, data)
        assert await store.get_range("k", 0, 500) == data
        previous = data
    await store.close()


async def test_file_key_under_an_object_is_missing_and_cannot_be_written(
    tmp_path: Path,
) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("a", b"object a")
    with pytest.raises(ObjectNotFound):
        await store.get_range("a/b", 0, 1)
    # A file cannot also be a directory: unlike S3, "a" and "a/b" cannot coexist.
    with pytest.raises(ObjectStoreError):
        await store.put("a/b", b"x")
    assert await store.get_range("a", 0, 100) == b"object a"


async def test_file_put_recreates_directories_removed_behind_its_back(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path / "root")
    await store.put("dir/a", b"1")
    shutil.rmtree(tmp_path / "root")
    await store.put("dir/b", b"2")
    assert await keys_of(store) == ["dir/b"]


async def test_file_put_new_never_replaces_an_object(tmp_path: Path) -> None:
    """A new key is created in place (no temp file); a key already taken is refused and
    keeps its object, and directories removed behind the store's back come back."""
    store = FileObjectStore(tmp_path / "root")
    await store.put_new_parts("dir/a", [b"first ", b"object"])
    assert not (tmp_path / "root" / TEMP_DIR).exists()
    with pytest.raises(ObjectStoreError):
        await store.put_new_parts("dir/a", [b"second"])
    assert await store.get_range("dir/a", 0, 100) == b"first object"
    shutil.rmtree(tmp_path / "root")
    await store.put_new_parts("dir/b", [b"2"])
    assert await keys_of(store) == ["dir/b"]
    before = len(os.listdir("/proc/self/fd"))
    await store.close()
    assert len(os.listdir("/proc/self/fd")) < before  # the directory it fsynced is closed


async def test_file_prepare_creates_prefix_directories_of_a_new_root(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path / "new" / "root")
    await store.prepare(SPREAD_PREFIXES)
    root = tmp_path / "new" / "root"
    assert sorted(p.name for p in root.iterdir()) == sorted(SPREAD_PREFIXES)
    # A directory removed behind the store's back still comes back on the next put.
    (root / "3f").rmdir()
    await store.put_new_parts("3f/segment", [b"data"])
    assert await keys_of(store) == ["3f/segment"]


async def test_file_prepare_refuses_nested_prefixes_and_prefixes_that_are_objects(
    tmp_path: Path,
) -> None:
    store = FileObjectStore(tmp_path)
    with pytest.raises(ValueError):
        await store.prepare(["ab/cd"])
    await store.put("ab", b"an object, not a prefix")
    with pytest.raises(ObjectStoreError):
        await store.prepare(["ab"])
    assert await store.get_range("ab", 0, 100) == b"an object, not a prefix"


async def test_file_ping_creates_a_missing_root_but_fails_on_a_file(tmp_path: Path) -> None:
    await FileObjectStore(tmp_path / "new" / "root").ping()
    assert (tmp_path / "new" / "root").is_dir()
    (tmp_path / "not-a-dir").write_bytes(b"")
    with pytest.raises(ObjectStoreError):
        await FileObjectStore(tmp_path / "not-a-dir").ping()


# -- s3 store ----------------------------------------------------------------------------------


@pytest.mark.s3
async def test_s3_list_pages_through_continuation_tokens(
    s3_store_factory: Callable[..., Any],
) -> None:
    store = s3_store_factory(list_page_size=7)
    keys = [f"p/{i:03d}" for i in range(30)]
    await asyncio.gather(*(store.put(key, b"v") for key in keys))
    assert await keys_of(store, "p/") == keys


@pytest.mark.s3
async def test_s3_endpoint_comes_from_aws_endpoint_url_env(
    seaweedfs_credentials: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", seaweedfs_credentials.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", seaweedfs_credentials.region)
    store = open_object_store(f"s3://{TEST_BUCKET}/env-endpoint", path_style=True)
    try:
        assert isinstance(store, S3ObjectStore) and store.endpoint_url is None
        await store.ensure_bucket()
        await store.put("k", b"via env")
        assert await store.get_range("k", 0, 10) == b"via env"
    finally:
        await store.close()


@pytest.mark.s3
async def test_s3_forbidden_is_not_retried(
    s3_store_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_store_factory()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")  # read when the client opens
    with pytest.raises(ObjectStoreError, match=r"after 1 attempt\(s\)"):
        await store.put("k", b"x")


@pytest.mark.s3
async def test_s3_ping_fails_for_missing_bucket(s3_store_factory: Callable[..., Any]) -> None:
    existing = s3_store_factory()
    missing = s3_store_factory()
    missing.bucket = "no-such-bucket-here"
    await existing.ping()
    with pytest.raises(ObjectStoreError, match="does not exist"):
        await missing.ping()


@pytest.mark.s3
@pytest.mark.slow
async def test_s3_put_survives_an_outage_and_ping_fails_during_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SeaweedFS(tmp_path / "outage")
    server.start()
    for name, value in server.client_env().items():
        monkeypatch.setenv(name, value)
    options: dict[str, Any] = {"endpoint_url": server.endpoint_url, "path_style": True}
    patient = S3ObjectStore("outage", **options, max_attempts=60, backoff_cap=0.5)
    impatient = S3ObjectStore("outage", **options, max_attempts=2)
    try:
        await patient.ensure_bucket()
        await patient.put("before", b"written before the outage")

        server.stop(kill=True)
        with pytest.raises(ObjectStoreError):
            await impatient.ping()
        put = asyncio.create_task(patient.put("during", b"written across the outage"))
        await asyncio.sleep(1.0)
        assert not put.done()  # nothing can have stored it: the server is down

        await asyncio.to_thread(server.start)
        await put
        assert await patient.get_range("during", 0, 100) == b"written across the outage"
        assert await patient.get_range("before", 0, 100) == b"written before the outage"
        await impatient.ping()
    finally:
        await patient.close()
        await impatient.close()
        server.cleanup()


@pytest.mark.s3
async def test_s3_puts_and_reads_use_presigned_urls_and_go_on_when_the_store_refuses_them(
    s3_store_factory: Callable[..., Any],
) -> None:
    """PUTs and ranged GETs go by presigned URL (SigV4); a bucket policy may deny
    query-string authentication: the first refused presigned request switches the store
    to signed requests, and every write and read still succeeds."""
    seaweed = s3_store_factory().endpoint_url
    sent: list[str] = []
    refuse_presigned = False

    async def forward(request: web.Request) -> web.StreamResponse:
        presigned = "X-Amz-Signature" in request.query
        if request.method in ("GET", "PUT"):
            sent.append(f"{request.method} {'presigned' if presigned else 'signed'}")
        if presigned and refuse_presigned:
            return web.Response(
                status=403,
                body=b"<Error><Code>AccessDenied</Code></Error>",
                content_type="application/xml",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                seaweed + request.path_qs,
                headers=headers,
                data=await request.read(),
            ) as upstream,
        ):
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            return web.Response(status=upstream.status, headers=passed, body=await upstream.read())

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        data = pattern(5000)
        store = s3_store_factory(endpoint_url=f"http://127.0.0.1:{port}")
        await store.put("k", data)
        assert await store.get_range("k", 100, 50) == data[100:150]
        assert await store.get_range("k", 4990, 100) == data[4990:]
        assert sent == ["PUT presigned", "GET presigned", "GET presigned"]

        sent.clear()
        refuse_presigned = True
        refused = s3_store_factory(endpoint_url=f"http://127.0.0.1:{port}")
        await refused.put("k2", data)
        assert await refused.get_range("k2", 100, 50) == data[100:150]
        assert await refused.get_range("k2", 4990, 100) == data[4990:]
        with pytest.raises(ObjectNotFound):
            await refused.get_range("missing", 0, 1)
        assert sent == ["PUT presigned", "PUT signed", "GET signed", "GET signed", "GET signed"]
    finally:
        await runner.cleanup()
