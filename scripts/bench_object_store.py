"""Object store throughput: PUTs of 4 MiB and 256 KiB objects, ranged GETs of 64 KiB.

Runs against the file store (a temp dir, or --dir) and SeaweedFS S3 (started
here from the `weed` binary, or an existing endpoint with --endpoint-url and
AWS credentials in the environment).

    python scripts/bench_object_store.py                 # file and s3
    python scripts/bench_object_store.py --backend file --concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamhouse.storage import ObjectStore  # noqa: E402
from streamhouse.storage.file_store import FileObjectStore  # noqa: E402
from streamhouse.storage.keys import spread_key  # noqa: E402
from streamhouse.storage.s3_store import S3ObjectStore  # noqa: E402

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    operation: str
    count: int
    size: int
    seconds: float
    client_cpu: float
    server_cpu: float | None

    def line(self) -> str:
        mb_s = self.count * self.size / MiB / self.seconds
        ops = self.count / self.seconds
        return (
            f"{self.backend:<5} {self.operation:<22} {self.count:>6} ops "
            f"{mb_s:>9.1f} MiB/s {ops:>9.1f} ops/s  cpu: client {self.client_cpu:5.2f}s"
            + ("" if self.server_cpu is None else f" server {self.server_cpu:5.2f}s")
            + f" wall {self.seconds:5.2f}s"
        )


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU of another process (Linux /proc), for the server side of a run."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    label: str,
    size: int,
    count: int,
    args: argparse.Namespace,
    op: Callable[[int], Awaitable[object]],
) -> Result:
    """Run op(0..count-1) with at most args.concurrency in flight and print the figures."""
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            await op(i)

    server_before = process_cpu_seconds(args.server_pid) if args.server_pid else None
    cpu_before = time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    seconds = time.perf_counter() - began
    server_cpu = None
    if server_before is not None:
        server_cpu = process_cpu_seconds(args.server_pid) - server_before
    result = Result(
        args.backend_name, label, count, size, seconds, time.process_time() - cpu_before, server_cpu
    )
    print(result.line(), flush=True)
    return result


async def bench(name: str, store: ObjectStore, args: argparse.Namespace) -> list[Result]:
    args.backend_name = name
    run = uuid.uuid4().hex[:8]
    results = []
    for size, count in ((4 * MiB, args.big_puts), (256 * KiB, args.small_puts)):
        data = os.urandom(size)
        keys = [spread_key(f"bench-{run}/{size}/{i}") for i in range(count)]

        def put(i: int, keys: list[str] = keys, data: bytes = data) -> Awaitable[None]:
            return store.put(keys[i], data)

        results.append(await measure(f"put {size // KiB} KiB", size, count, args, put))

    sources = [spread_key(f"bench-{run}/{4 * MiB}/{i}") for i in range(args.big_puts)]
    rng = random.Random(42)
    ranges = [(rng.choice(sources), rng.randrange(0, 4 * MiB - 64 * KiB)) for _ in range(args.gets)]

    async def get(i: int) -> None:
        key, start = ranges[i]
        data = await store.get_range(key, start, 64 * KiB)
        assert len(data) == 64 * KiB

    results.append(await measure("get_range 64 KiB", 64 * KiB, args.gets, args, get))

    for prefix in {key.split("/", 1)[0] for key in sources}:
        async for info in store.list(prefix):
            if f"bench-{run}/" in info.key:
                await store.delete(info.key)
    return results


@contextlib.contextmanager
def seaweedfs_endpoint(args: argparse.Namespace) -> Iterator[str]:
    if args.endpoint_url:
        yield args.endpoint_url
        return
    from tests.support.seaweedfs import SeaweedFS

    directory = args.dir and tempfile.mkdtemp(dir=args.dir)
    with SeaweedFS(directory, extra_args=args.weed_arg) as server:
        print(f"seaweedfs ({server.mode}) started in {server.last_start_seconds:.2f}s")
        os.environ.update(server.client_env())
        args.server_pid = server.pid
        try:
            yield server.endpoint_url
        finally:
            args.server_pid = None


async def main_async(args: argparse.Namespace) -> None:
    print(f"concurrency {args.concurrency}, {os.cpu_count()} CPUs")
    args.server_pid = None
    if args.backend in ("file", "all"):
        with tempfile.TemporaryDirectory(dir=args.dir) as root:
            store = FileObjectStore(root)
            await bench("file", store, args)
            await store.close()
    if args.backend in ("s3", "all"):
        with seaweedfs_endpoint(args) as endpoint:
            s3 = S3ObjectStore(
                args.bucket,
                "bench",
                endpoint_url=endpoint,
                path_style=True,
                max_concurrency=max(args.concurrency, 1),
            )
            await s3.ensure_bucket()
            await bench("s3", s3, args)
            await s3.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("file", "s3", "all"), default="all")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--big-puts", type=int, default=64, help="number of 4 MiB puts")
    parser.add_argument("--small-puts", type=int, default=512, help="number of 256 KiB puts")
    parser.add_argument("--gets", type=int, default=4000, help="number of 64 KiB ranged gets")
    parser.add_argument("--dir", default=None, help="parent dir for the file store temp root")
    parser.add_argument("--endpoint-url", default=None, help="existing S3 endpoint to use")
    parser.add_argument("--bucket", default="streamhouse-bench")
    parser.add_argument(
        "--weed-arg", action="append", default=[], help="extra weed flag (repeatable)"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
