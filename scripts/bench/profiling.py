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
_LOOP_FRAME = "Runner.run "


@dataclass(frozen=True, slots=True)
class HotFunction:
    """A function's share of the samples: own code, and with callees."""

    name: str
    self_pct: float
    total_pct: float


@dataclass(frozen=True, slots=True)
class Profile:
    """Hottest functions of all threads and of the event-loop thread alone.

    py-spy counts a thread blocked in write/fsync/pread as busy, so executor threads doing
    file I/O dominate `hot`; `loop_hot` is where the single asyncio thread spends its time,
    the Python CPU that bounds throughput. Under uvloop the loop's own C code (polling,
    socket I/O, callback dispatch) shows as own time of asyncio's Runner.run."""

    hot: list[HotFunction]
    loop_hot: list[HotFunction]
    loop_pct: float
    samples: int


class Profiler:
    """`py-spy record` in collapsed-stack (raw) format; stop() makes it write the file.

    gil_only keeps only samples of the thread holding the GIL."""

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
                *(["--gil"] if gil_only else []),
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


def _stacks(raw: Path) -> list[tuple[list[str], int]]:
    """(frames root first, with line numbers dropped; count) per line `f1;f2;...;leaf COUNT`."""
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack:
            stacks.append(([_LINE_NUMBER.sub(")", f) for f in stack.split(";")], int(count_text)))
    return stacks


def _top(stacks: list[tuple[list[str], int]], limit: int) -> list[HotFunction]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return [
        HotFunction(name, 100 * n / total, 100 * inclusive[name] / total)
        for name, n in own.most_common(limit)
    ]


def hot_functions(raw: Path, limit: int = 15) -> Profile:
    """Top functions by own samples from a py-spy raw file."""
    stacks = _stacks(raw)
    total = sum(count for _, count in stacks)
    if not total:
        return Profile([], [], 0.0, 0)
    loop = [(f, n) for f, n in stacks if any(x.startswith(_LOOP_FRAME) for x in f)]
    loop_total = sum(count for _, count in loop)
    return Profile(
        _top(stacks, limit), _top(loop, limit) if loop else [], 100 * loop_total / total, total
    )


def format_hot(title: str, profile: Profile) -> str:
    def rows(hot: list[HotFunction]) -> list[str]:
        return [f"  {h.self_pct:5.1f}%  ({h.total_pct:5.1f}%)  {h.name}" for h in hot]

    return "\n".join(
        [
            f"-- py-spy {title}: {profile.samples} samples, all threads: own % (incl. callees)",
            *rows(profile.hot),
            f"-- event-loop thread ({profile.loop_pct:.0f}% of samples): own % (incl. callees)",
            *rows(profile.loop_hot),
        ]
    )
