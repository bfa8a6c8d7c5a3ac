"""py-spy attached to the broker for one scenario's measured window, and its hottest functions."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass(frozen=True, slots=True)
class HotFunction:
    """A function's share of the sampled (non-idle) broker time: own code, and with callees."""

    name: str
    self_pct: float
    total_pct: float


class Profiler:
    """`py-spy record` in collapsed-stack (raw) format; stop() makes it write the file.

    gil_only keeps only samples of the thread holding the GIL: Python's CPU bottleneck,
    without executor threads blocked in write/fsync/pread."""

    def __init__(self, pid: int, path: Path, rate: int = 200, gil_only: bool = False) -> None:
        binary = shutil.which("py-spy")
        if binary is None:
            raise RuntimeError("py-spy is not on PATH")
        self.path = path
        self.proc = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--output",
                str(path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> Path | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.path if self.path.exists() else None


@dataclass(frozen=True, slots=True)
class Profile:
    """The hottest functions, and how much of the sampled time the event-loop thread took
    (the rest is executor threads: file I/O, SQLite, hashing with the GIL released or not)."""

    hot: list[HotFunction]
    loop_pct: float
    samples: int


def hot_functions(raw: Path, limit: int = 15) -> Profile:
    """Top functions by own samples from a py-spy raw file (lines: `f1;f2;...;leaf COUNT`).

    Under uvloop the loop's own C code (polling, socket I/O, callback dispatch) shows as
    own time of asyncio's Runner.run, the Python frame that called into it."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = loop = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_LINE_NUMBER.sub(")", f) for f in stack.split(";")]
        if frames[0].startswith("process ") or frames[0].startswith("thread "):
            frames = frames[1:] or frames
        own[frames[-1]] += count
        if any(f.startswith("Runner.run ") for f in frames):
            loop += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return Profile([], 0.0, 0)
    hot = [
        HotFunction(name, 100 * n / total, 100 * inclusive[name] / total)
        for name, n in own.most_common(limit)
    ]
    return Profile(hot, 100 * loop / total, total)


def format_hot(title: str, profile: Profile) -> str:
    lines = [
        f"-- py-spy {title}: {profile.samples} non-idle samples, event-loop thread "
        f"{profile.loop_pct:.0f}%; top functions by own time (incl. callees)"
    ]
    lines += [f"  {h.self_pct:5.1f}%  ({h.total_pct:5.1f}%)  {h.name}" for h in profile.hot]
    return "\n".join(lines)
