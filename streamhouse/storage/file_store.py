"""FileObjectStore: objects as files under a root directory (`file://DIR`).

A key "ab/seg-42" is the file ROOT/ab/seg-42. A put writes a temp file under
ROOT/.streamhouse-tmp/, fsyncs it, renames it over the final path and fsyncs
the final directory, so after a crash a key holds either the old object or the
whole new one, never a prefix. A put of a new key (a segment's) skips the temp file:
it creates the final file, fsyncs it and its directory. Directories are created one
level at a time with their parent fsynced, so a directory entry that a put relied on
is durable too.
Temp files left by a crash are never listed and `cleanup_temp()` removes them.

Blocking file I/O runs in worker threads; reads use os.pread on file descriptors
kept in a small LRU so hot segments are not reopened for every range.
One process owns a root: another process writing the same root would not evict
this one's cached descriptors. Unlike S3, a key cannot be both an object and a
"directory" of others ("a" and "a/b"): the second put raises ObjectStoreError.

By default files are written and read with direct I/O (O_DIRECT), past the page cache:
the broker's segment cache already holds the freshly written tail that consumers read,
and copying every written byte into new page-cache pages cost more CPU than everything
else a produce does. A write gathers the parts into an aligned per-thread buffer; the
last partial block goes through the page cache. Where the file system or the device
refuses direct I/O, or with `direct_io=False`, files go through the page cache, and a
read the cache can serve whole (RWF_NOWAIT) is copied on the event loop instead of in a
thread.
"""

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from streamhouse.buffers import aligned_unfilled, unfilled_bytearray
from streamhouse.storage.keys import validate_key, validate_range
from streamhouse.storage.object_store import (
    Buffer,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
)
from streamhouse.workers import WorkerThreads

IO_THREADS = 6
"""Blocking file calls in parallel: concurrent segment uploads plus cold reads."""

_IOV_MAX = 512
"""Buffers per writev call (Linux allows 1024)."""

LOOP_READ_MAX = 4 * 1024 * 1024
"""Largest read served on the event loop from the page cache: a whole chunk of a segment
of the default size, about 0.4 ms of copying, which costs the loop less than the wake-ups
of a thread hop."""

RECENT_PUTS = 4096
"""How many of the latest puts' keys are remembered as cheap to open on the event loop."""

_NOWAIT = getattr(os, "RWF_NOWAIT", None)
"""preadv flag: fail instead of waiting for the disk (Linux)."""

_DIRECT = getattr(os, "O_DIRECT", 0)

DIRECT_BLOCK = 4096
"""Alignment of direct I/O (file offsets, lengths, buffer addresses): the largest logical
block size of common devices."""

TEMP_DIR = ".streamhouse-tmp"
"""Reserved top-level name under the root; keys may not start with it."""

_T = TypeVar("_T")
_Writer = Callable[[Path, Sequence[Buffer]], "memoryview | None"]


@dataclass(slots=True)
class _OpenFile:
    """A cached read descriptor; closed once evicted and no read is using it."""

    fd: int
    readers: int = 0
    evicted: bool = False

    def release(self) -> None:
        if self.evicted and self.readers == 0:
            os.close(self.fd)


class FileObjectStore(ObjectStore):
    """Durable objects in a local directory tree.

    `max_open_files` bounds the descriptor cache. Descriptor bookkeeping happens
    on the event loop thread only, so it needs no lock: a descriptor is closed
    only after the last pread using it has returned, never under a running read.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, max_open_files: int = 128, direct_io: bool = True
    ) -> None:
        if max_open_files < 1:
            raise ValueError("max_open_files must be at least 1")
        self.root = Path(root).absolute()
        self._temp_dir = self.root / TEMP_DIR
        self._max_open_files = max_open_files
        self._open_files: OrderedDict[str, _OpenFile] = OrderedDict()
        self._known_dirs: set[Path] = set()
        self._dir_fds: dict[Path, int] = {}
        """Directories of puts, kept open to fsync them without an open and a close."""
        self._retired_dir_fds: list[int] = []
        self._recent_puts: OrderedDict[str, None] = OrderedDict()
        """Keys of the latest puts, whose files are cheap to open on the event loop (for
        reads there, through the page cache)."""
        self._direct = direct_io and _DIRECT != 0
        self._loop_reads = _NOWAIT is not None
        self._workers = WorkerThreads(IO_THREADS, "file-store")
        # Bumped by every put and delete; a descriptor opened across a bump may be stale.
        self._mutations = 0

    @property
    def direct_io(self) -> bool:
        """Whether files are written and read past the page cache (until the file system
        refuses it once)."""
        return self._direct

    @property
    def gathers_new_objects(self) -> bool:
        return self._direct

    @property
    def _reads_on_loop(self) -> bool:
        """Reads the page cache holds may be copied on the event loop (never with direct
        I/O, which bypasses that cache)."""
        return self._loop_reads and not self._direct

    # -- paths ---------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == TEMP_DIR:
            raise ValueError(f"object key uses the reserved name {TEMP_DIR!r}: {key!r}")
        return self.root / key

    def _ensure_dir(self, directory: Path) -> None:
        """Create `directory` and missing parents, fsyncing each new entry's parent."""
        if directory in self._known_dirs:
            return
        missing: list[Path] = []
        probe = directory
        while not probe.is_dir():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        for new_dir in reversed(missing):
            _make_dir(new_dir)
            self._fsync_dir(new_dir.parent)
        self._known_dirs.add(directory)

    # -- blocking work, run in threads ---------------------------------------------------------

    def _prepare_sync(self, directories: list[Path]) -> None:
        """Create the missing ones of these directories of the root, then fsync the root once
        rather than once for each (as the write path would, creating them one by one)."""
        self._ensure_dir(self.root)
        created = False
        for directory in directories:
            if directory not in self._known_dirs:
                created |= _make_dir(directory)
        if created:
            self._fsync_dir(self.root)
        self._known_dirs.update(directories)

    def _put_sync(self, path: Path, parts: Sequence[Buffer]) -> memoryview | None:
        return self._recreating_dirs(self._write_and_rename, path, parts)

    def _create_sync(self, path: Path, parts: Sequence[Buffer]) -> memoryview | None:
        return self._recreating_dirs(self._write_new, path, parts)

    def _recreating_dirs(
        self, write: _Writer, path: Path, parts: Sequence[Buffer]
    ) -> memoryview | None:
        try:
            return write(path, parts)
        except FileNotFoundError:
            # A directory we remembered was removed behind our back: forget and recreate.
            self._forget_dirs()
            return write(path, parts)

    def _forget_dirs(self) -> None:
        self._known_dirs.clear()
        # Closed only by close(): another thread's put may be fsyncing one right now.
        retired, self._dir_fds = self._dir_fds, {}
        self._retired_dir_fds.extend(retired.values())

    def _close_dirs(self) -> None:
        self._forget_dirs()
        retired, self._retired_dir_fds = self._retired_dir_fds, []
        for fd in retired:
            os.close(fd)

    def _fsync_dir(self, directory: Path) -> None:
        fd = self._dir_fds.get(directory)
        if fd is None:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if self._dir_fds.setdefault(directory, fd) != fd:  # another thread was first
                os.close(fd)
                fd = self._dir_fds[directory]
        os.fsync(fd)

    def _write_new(self, path: Path, parts: Sequence[Buffer]) -> memoryview | None:
        self._ensure_dir(path.parent)
        stored = self._create_file(path, parts)
        self._fsync_dir(path.parent)
        return stored

    def _create_file(self, path: Path, parts: Sequence[Buffer]) -> memoryview | None:
        """Create `path`, which must not exist yet, holding `parts`, fsynced; a failure after
        creating it removes it again. Returns the buffer a direct write gathered the parts
        into (see ObjectStore.put_new_parts)."""
        fd, direct = self._open_new(path)
        try:
            try:
                gathered = None
                if direct:
                    gathered = _gather_aligned(parts)
                    _write_direct(fd, gathered)
                else:
                    _write_all(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return gathered

    def _open_new(self, path: Path) -> tuple[int, bool]:
        """Create `path`, which must not exist yet, for writing: the descriptor, and whether
        it has direct I/O (unless the file system refuses it, which turns it off for good)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        if self._direct:
            try:
                return os.open(path, flags | _DIRECT, 0o644), True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # Linux creates the file before it checks the flag: remove it for the retry.
                path.unlink(missing_ok=True)
                self._direct = False
        return os.open(path, flags, 0o644), False

    def _write_and_rename(self, path: Path, parts: Sequence[Buffer]) -> memoryview | None:
        self._ensure_dir(self._temp_dir)
        self._ensure_dir(path.parent)
        temp = self._temp_dir / f"{uuid.uuid4().hex}.tmp"
        stored = self._create_file(temp, parts)
        try:
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._fsync_dir(path.parent)
        return stored

    def _delete_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self._fsync_dir(path.parent)

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        # Walk only the directory the prefix pins down: "ab/cd/x" starts at ROOT/ab/cd.
        head, _, _ = prefix.rpartition("/")
        try:
            validate_key(head)
        except ValueError:
            head = ""  # no valid key lies under such a prefix; never walk outside the root
        start = self.root / head if head else self.root
        found: list[ObjectInfo] = []
        stack = [(start, f"{head}/" if head else "")]
        while stack:
            directory, key_prefix = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                key = key_prefix + entry.name
                if key == TEMP_DIR:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    # Descend only where keys below could still match the prefix.
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        stack.append((Path(entry.path), key + "/"))
                elif key.startswith(prefix):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted while we walked
                    found.append(ObjectInfo(key, st.st_size, st.st_mtime_ns // 1_000_000))
        found.sort(key=lambda info: info.key)
        return found

    def _cleanup_temp_sync(self) -> int:
        removed = 0
        try:
            entries = list(os.scandir(self._temp_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
        if removed:
            self._fsync_dir(self._temp_dir)
        return removed

    # -- descriptor cache (event loop thread only) ---------------------------------------------

    def _keep_open(self, key: str, fd: int, mutations: int) -> None:
        """Cache `fd`, just opened for `key`, unless a put or delete ran meanwhile (it may
        be stale) or another reader cached one first."""
        if mutations != self._mutations or key in self._open_files:
            os.close(fd)
            return
        self._open_files[key] = _OpenFile(fd)
        while len(self._open_files) > self._max_open_files:
            _, oldest = self._open_files.popitem(last=False)
            oldest.evicted = True
            oldest.release()

    def _open_written(self, key: str, path: Path) -> _OpenFile | None:
        """Open, on the event loop, a file this store wrote moments ago: its directory
        entry and inode are in memory, so this takes microseconds and never waits for
        the disk, and its data is likely in the page cache, read on the loop too. None if
        it is gone."""
        try:
            fd = self._open_for_reading(path)
        except OSError:
            return None
        self._keep_open(key, fd, self._mutations)
        return self._open_files.get(key)

    def _open_for_reading(self, path: Path) -> int:
        if self._direct:
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC | _DIRECT)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._direct = False
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    @staticmethod
    def _pread(fd: int, length: int, start: int) -> bytearray | memoryview:
        if _is_direct(fd):
            try:
                return _pread_direct(fd, length, start)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                _stop_direct(fd)  # the device wants another alignment: read through
        return _pread_into_bytearray(fd, length, start)

    def _open_and_pread(self, path: Path, length: int, start: int) -> tuple[int, Buffer]:
        fd = self._open_for_reading(path)
        try:
            return fd, self._pread(fd, length, start)
        except BaseException:
            os.close(fd)
            raise

    def _evict(self, key: str) -> None:
        self._mutations += 1
        cached = self._open_files.pop(key, None)
        if cached is not None:
            cached.evicted = True
            cached.release()

    # -- ObjectStore ---------------------------------------------------------------------------

    async def _run(
        self, fn: Callable[..., _T], *args: object, missing_key: str | None = None
    ) -> _T:
        """Run blocking `fn` in a thread; OS errors become ObjectStoreError, and a missing
        file becomes ObjectNotFound(missing_key) when the caller names the key it read."""
        try:
            return await self._workers.run(fn, *args)
        except (FileNotFoundError, NotADirectoryError) as exc:
            if missing_key is not None:
                raise ObjectNotFound(missing_key) from None
            raise ObjectStoreError(f"{fn.__name__} failed under {self.root}: {exc}") from exc
        except OSError as exc:
            raise ObjectStoreError(f"{fn.__name__} failed under {self.root}: {exc}") from exc

    async def prepare(self, prefixes: Sequence[str]) -> None:
        """Create a directory for each prefix now, so that the first put under it does not
        pay a mkdir and an fsync of the root on the write path."""
        directories = []
        for prefix in prefixes:
            if "/" in prefix:
                raise ValueError(f"prefix must be one path component: {prefix!r}")
            directories.append(self._path(prefix))
        await self._run(self._prepare_sync, directories)

    async def put(self, key: str, data: Buffer) -> None:
        await self.put_parts(key, (data,))

    async def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        await self._put(self._put_sync, key, parts)

    async def put_new_parts(self, key: str, parts: Sequence[Buffer]) -> memoryview | None:
        return await self._put(self._create_sync, key, parts)

    async def _put(self, write: _Writer, key: str, parts: Sequence[Buffer]) -> memoryview | None:
        path = self._path(key)
        try:
            stored = await self._run(write, path, parts)
            if self._reads_on_loop:
                self._recent_puts[key] = None
                if len(self._recent_puts) > RECENT_PUTS:
                    self._recent_puts.popitem(last=False)
        finally:
            # Evict after the rename so no read keeps serving the replaced file.
            self._evict(key)
        return stored

    async def get_range(self, key: str, start: int, length: int) -> Buffer:
        path = self._path(key)
        validate_range(start, length)
        handle = self._open_files.get(key)
        loop_reads = self._reads_on_loop
        if handle is None and loop_reads and key in self._recent_puts:
            handle = self._open_written(key, path)
        if handle is None:
            # Open and read in one thread hop; a hop costs more than either call.
            mutations = self._mutations
            fd, data = await self._run(self._open_and_pread, path, length, start, missing_key=key)
            self._keep_open(key, fd, mutations)
            return data
        self._open_files.move_to_end(key)
        if length <= LOOP_READ_MAX and loop_reads:
            # Most reads are of data still in the page cache: copied on the event loop,
            # they cost less than the thread hop, which wakes a thread and waits for it.
            try:
                cached = _pread_if_cached(handle.fd, length, start)
            except OSError:
                self._loop_reads = False  # the file system refuses RWF_NOWAIT
                cached = None
            if cached is not None:
                return cached
        handle.readers += 1
        try:
            return await self._run(self._pread, handle.fd, length, start)
        finally:
            handle.readers -= 1
            handle.release()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        self._evict(key)
        await self._run(self._delete_sync, path)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for info in await self._run(self._list_sync, prefix):
            yield info

    async def ping(self) -> None:
        """Create the root if it is missing; raise ObjectStoreError unless it is a writable dir."""
        await self._run(self._ensure_dir, self.root)
        if not await self._run(os.access, self.root, os.W_OK | os.X_OK):
            raise ObjectStoreError(f"object store root {self.root} is not writable")

    async def cleanup_temp(self) -> int:
        """Remove temp files a crashed put left behind; return how many.

        Call at start-up, before any put on this root is in flight.
        """
        return await self._run(self._cleanup_temp_sync)

    async def close(self) -> None:
        for key in list(self._open_files):
            self._evict(key)
        workers, self._workers = self._workers, WorkerThreads(IO_THREADS, "file-store")
        workers.shutdown()
        self._close_dirs()


def _make_dir(directory: Path) -> bool:
    """Create `directory` unless it exists already; True if this call created it."""
    try:
        directory.mkdir()
    except FileExistsError:
        if not directory.is_dir():
            raise
        return False
    return True


def _gather_aligned(parts: Sequence[Buffer]) -> memoryview:
    """`parts` back to back in one new buffer aligned for direct I/O."""
    views = [memoryview(part).cast("B") for part in parts]
    gathered = aligned_unfilled(sum(len(view) for view in views), DIRECT_BLOCK)
    position = 0
    for view in views:
        gathered[position : position + len(view)] = view
        position += len(view)
    return gathered


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & _DIRECT)


def _stop_direct(fd: int) -> None:
    """Switch direct I/O off for `fd`, opened by this store: of the flags F_SETFL can
    change, the store sets only O_DIRECT."""
    fcntl.fcntl(fd, fcntl.F_SETFL, 0)


def _write_direct(fd: int, gathered: memoryview) -> None:
    """Write `gathered` (aligned) to `fd`, opened for direct I/O; the last partial block
    (and anything the device would not take directly) goes through the page cache."""
    whole_blocks = len(gathered) - len(gathered) % DIRECT_BLOCK
    offset = _pwrite_all(fd, gathered[:whole_blocks], 0) if whole_blocks else 0
    if offset < len(gathered):
        _stop_direct(fd)
        _pwrite_all(fd, gathered[offset:], offset)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> int:
    """Write all of `view` at `offset`; returns the offset after it. A direct write the
    device refuses, or one cut short off a block boundary, continues through the page cache."""
    while view:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not _is_direct(fd):
                raise
            _stop_direct(fd)
            continue
        if written % DIRECT_BLOCK and written < len(view):
            _stop_direct(fd)
        view = view[written:]
        offset += written
    return offset


def _write_all(fd: int, parts: Sequence[Buffer]) -> None:
    """Gather-write every part, resuming after short writes."""
    pending = [memoryview(p).cast("B") for p in parts if len(p)]
    while pending:
        written = os.writev(fd, pending[:_IOV_MAX])
        while written:
            head = pending[0]
            if written >= len(head):
                written -= len(head)
                pending.pop(0)
            else:
                pending[0] = head[written:]
                written = 0


def _pread_if_cached(fd: int, length: int, start: int) -> bytearray | None:
    """The whole range if the page cache holds it, else None (read it in a thread)."""
    assert _NOWAIT is not None
    try:
        data = _pread_into_bytearray(fd, length, start, _NOWAIT)
    except BlockingIOError:
        return None
    return data if len(data) == length else None


def _pread_into_bytearray(fd: int, length: int, start: int, flags: int = 0) -> bytearray:
    """A writable buffer, so the read path patches offsets in place instead of copying."""
    buffer = unfilled_bytearray(length)
    read = os.preadv(fd, [buffer], start, flags)
    if read < length:
        del buffer[read:]
    return buffer


def _pread_direct(fd: int, length: int, start: int) -> memoryview:
    """Read [start, start+length) with direct I/O: the enclosing whole blocks into an
    aligned buffer, of which a writable view of the range is returned (shorter at EOF)."""
    first = start - start % DIRECT_BLOCK
    end = -(-(start + length) // DIRECT_BLOCK) * DIRECT_BLOCK
    blocks = aligned_unfilled(end - first, DIRECT_BLOCK)
    read = os.preadv(fd, [blocks], first)
    skip = start - first
    return blocks[skip : max(skip, min(read, skip + length))]
