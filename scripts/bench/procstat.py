"""A process's CPU time and resident memory, read from /proc (Linux; no psutil needed)."""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (all its threads) so far."""
    return _stat_cpu_seconds(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User + system CPU of one thread of the process so far (the main thread's id is pid)."""
    return _stat_cpu_seconds(f"/proc/{pid}/task/{tid}/stat")


def _stat_cpu_seconds(path: str) -> float:
    with open(path) as fh:
        # The command name may contain spaces: fields start after the last ')'.
        fields = fh.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the highest resident set size since start or the last reset_peak_rss()."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Start a new VmHWM window (writing 5 to clear_refs); False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True
