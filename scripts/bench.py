"""End-to-end broker benchmark: real Kafka clients against a broker process, one table per run.

Starts the broker (StreamHouse by default, Tansu with --tansu, anything with --broker-cmd),
runs every scenario with its client in a separate process, and measures client-side
throughput / latency together with the broker's CPU (user+sys from /proc) and peak RSS
(VmHWM) over each scenario's measured window, and the client's CPU, which shows when the
client itself is the bound. With --compare, two brokers run
interleaved (A, B, A, B, ...) for --repeat repetitions and the medians and per-repetition
B/A ratios are printed. Run from the repository root:

    python scripts/bench.py                                 # ours, embedded (file + SQLite)
    python scripts/bench.py --backend s3                    # PostgreSQL + SeaweedFS S3
    python scripts/bench.py --tansu --compare ours --repeat 3
    python scripts/bench.py --broker-cmd 'mybroker --port {port} --dir {dir}' --only produce-1KiB
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.brokers import BrokerSpec, RunningBroker, S3Backend, s3_backend
from bench.procstat import cpu_seconds, peak_rss_bytes, reset_peak_rss
from bench.profiling import Profiler, format_hot, hot_functions
from bench.report import comparison_table, run_table
from bench.scenarios import BY_NAME, SCENARIOS, Result, Scenario

CLIENT = Path(__file__).resolve().parent / "bench" / "client.py"
MB = 1_000_000


@dataclasses.dataclass(slots=True)
class Window:
    """What the parent saw of one client run: the framed broker CPU and memory, and the result."""

    cpu_s: float | None = None
    client_cpu_s: float | None = None
    peak_rss: int | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    profile: Path | None = None


def run_client(
    broker: RunningBroker,
    spec: dict[str, Any],
    timeout_s: float,
    profile: Path | None = None,
    gil_only: bool = False,
) -> Window:
    """Run one workload process; sample (and optionally profile) the broker between its
    BEGIN and END marks."""
    window = Window()
    profiler: Profiler | None = None
    proc = subprocess.Popen(
        [sys.executable, str(CLIENT), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    cpu_begin = client_begin = 0.0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line == "BEGIN\n":
                reset_peak_rss(broker.pid)
                cpu_begin = cpu_seconds(broker.pid)
                client_begin = cpu_seconds(proc.pid)
                if profile is not None:
                    profiler = Profiler(broker.pid, profile, gil_only=gil_only)
            elif line == "END\n" and broker.alive():
                window.cpu_s = cpu_seconds(broker.pid) - cpu_begin
                window.client_cpu_s = cpu_seconds(proc.pid) - client_begin
                window.peak_rss = peak_rss_bytes(broker.pid)
                if profiler is not None:
                    window.profile, profiler = profiler.stop(), None
            elif line.startswith("RESULT "):
                window.result = json.loads(line[7:])
        stderr = proc.stderr.read() if proc.stderr else ""
        rc = proc.wait()
    finally:
        timer.cancel()
        if profiler is not None:
            profiler.stop()
    if not broker.alive():
        window.error = f"broker died (rc {broker.proc.returncode}): {broker.log_tail()}"
    elif rc != 0 or window.result is None:
        reason = stderr.strip().splitlines()[-1:] or [f"client exit {rc} (timeout {timeout_s}s?)"]
        window.error = reason[0][:300]
    return window


def measure(
    broker: RunningBroker,
    backend: str,
    rep: int,
    scenario: Scenario,
    produced: dict[str, tuple[str, int]],
    args: argparse.Namespace,
) -> Result:
    result = Result(broker.spec.name, backend, rep, scenario.name, ok=False)
    spec: dict[str, Any] = {
        "workload": scenario.workload,
        "bootstrap": broker.bootstrap,
        "size": scenario.size,
        "compression": scenario.compression,
        "partitions": scenario.partitions,
        "duration": args.duration,
        "records": args.records,
        "topic": f"bench-{scenario.name}-{uuid.uuid4().hex[:6]}",
        "rate": args.e2e_rate,
        "warmup": 1.0,
        "passes": args.consume_passes,
        "fetch_wait_ms": args.e2e_fetch_wait_ms,
    }
    if scenario.reads is not None:
        if scenario.reads not in produced:
            result.reason = f"needs {scenario.reads}, which did not run or failed"
            return result
        spec["topic"], spec["expect"] = produced[scenario.reads]
    profile = None
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile = args.profile / f"{broker.spec.name}-{backend}-{rep + 1}-{scenario.name}.txt"
    window = run_client(
        broker, spec, timeout_s=args.duration + 120, profile=profile, gil_only=args.profile_gil
    )
    if window.profile is not None:
        hot = hot_functions(window.profile)
        print(format_hot(f"{broker.spec.name}/{backend}/{scenario.name}", hot), flush=True)
    if window.error:
        result.reason = window.error
        return result
    got = window.result or {}
    result.ok = True
    result.records, result.seconds = got["records"], got["seconds"]
    if "in_topic" in got:
        produced[scenario.name] = (spec["topic"], got["in_topic"])
    if scenario.workload != "group":
        result.msg_s = got["records"] / got["seconds"]
        result.mb_s = got["bytes"] / got["seconds"] / MB
        if window.client_cpu_s is not None:
            result.client_cpu_pct = 100 * window.client_cpu_s / got["seconds"]
    result.broker_cpu_s = window.cpu_s
    if window.cpu_s and scenario.workload not in ("group", "e2e"):
        result.rec_per_cpu_s = got["records"] / window.cpu_s
    if window.peak_rss is not None:
        result.peak_rss_mb = window.peak_rss / 2**20
    for key in ("p50_ms", "p99_ms", "max_ms", "first_record_s"):
        if key in got:
            setattr(result, key, got[key])
    return result


def run_broker(
    spec: BrokerSpec,
    backend: str,
    rep: int,
    s3: S3Backend | None,
    scenarios: list[Scenario],
    workroot: Path,
    args: argparse.Namespace,
) -> list[Result]:
    workdir = workroot / f"{spec.name}-{backend}-{rep}-{uuid.uuid4().hex[:6]}"
    try:
        broker = RunningBroker(spec, backend, workdir, s3)
    except Exception as exc:  # noqa: BLE001 - reported as FAILED rows, the run goes on
        return [
            Result(spec.name, backend, rep, s.name, ok=False, reason=f"start: {exc}")
            for s in scenarios
        ]
    results: list[Result] = []
    produced: dict[str, tuple[str, int]] = {}
    try:
        for scenario in scenarios:
            if not broker.alive():
                results.append(
                    Result(
                        spec.name,
                        backend,
                        rep,
                        scenario.name,
                        ok=False,
                        reason=f"broker gone: {broker.log_tail()}",
                    )
                )
                continue
            results.append(measure(broker, backend, rep, scenario, produced, args))
            if args.pause_after and scenario.name == args.pause_after:
                input(f"paused after {scenario.name}; broker pid {broker.pid}; Enter to go on ")
    finally:
        broker.stop()
    print(run_table(results), flush=True)
    print(flush=True)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    broker = parser.add_mutually_exclusive_group()
    broker.add_argument(
        "--broker-cmd",
        metavar="TEMPLATE",
        help="broker A as a command template ({port} {dir} {python}; s3: {bucket} "
        "{metadata_url} {s3_endpoint}); default: StreamHouse",
    )
    broker.add_argument(
        "--tansu", action="store_true", help="broker A is Tansu (memory:// or s3://)"
    )
    parser.add_argument(
        "--compare",
        metavar="BROKER",
        help="broker B: 'ours', 'tansu' or a command template; runs A,B interleaved",
    )
    parser.add_argument("--repeat", type=int, default=1, help="repetitions K [1]")
    parser.add_argument(
        "--backend",
        choices=["embedded", "s3", "both"],
        default="embedded",
        help="embedded: file + SQLite (Tansu: memory://); s3: PostgreSQL + SeaweedFS",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per produce scenario [5]"
    )
    parser.add_argument(
        "--records", type=int, default=0, help="stop producing at N records (0: no cap)"
    )
    parser.add_argument(
        "--e2e-rate", type=int, default=1000, help="msg/s of the latency scenario [1000]"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SCENARIO",
        choices=list(BY_NAME),
        help="run these scenarios (consumes pull in their produce)",
    )
    parser.add_argument(
        "--e2e-fetch-wait-ms",
        type=int,
        default=500,
        help="fetch.wait.max.ms of the latency consumer [500, librdkafka's default]",
    )
    parser.add_argument(
        "--profile-gil", action="store_true", help="--profile only the thread holding the GIL"
    )
    parser.add_argument(
        "--consume-passes", type=int, default=1, help="consumes read their topic N times [1]"
    )
    parser.add_argument("--json", metavar="FILE", help="write all results as JSON")
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        type=Path,
        default=Path(".bench"),
        help="brokers' data directories go under DIR, removed after the run [./.bench, "
        "next to a broker's default ./streamhouse-data]",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="py-spy the broker in each scenario's window (Python brokers): raw stacks in DIR, "
        "top functions printed; the profiled run's figures are not comparable",
    )
    parser.add_argument("--pause-after", metavar="SCENARIO", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def selected(names: list[str] | None) -> list[Scenario]:
    if not names:
        return SCENARIOS
    wanted = set(names) | {BY_NAME[n].reads for n in names if BY_NAME[n].reads}
    return [s for s in SCENARIOS if s.name in wanted]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    first = (
        BrokerSpec.tansu()
        if args.tansu
        else (BrokerSpec.parse(args.broker_cmd) if args.broker_cmd else BrokerSpec.ours())
    )
    brokers = [first]
    if args.compare:
        brokers.append(BrokerSpec.parse(args.compare))
        if brokers[1].name == brokers[0].name:
            brokers[1] = dataclasses.replace(brokers[1], name=brokers[1].name + "-B")
    backends = ["embedded", "s3"] if args.backend == "both" else [args.backend]
    scenarios = selected(args.only)
    results: list[Result] = []
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_backend()) if "s3" in backends else None
        args.work_dir.mkdir(parents=True, exist_ok=True)
        workroot = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-", dir=args.work_dir))
        )
        for rep in range(args.repeat):
            for backend in backends:
                for spec in brokers:
                    results += run_broker(
                        spec,
                        backend,
                        rep,
                        s3 if backend == "s3" else None,
                        scenarios,
                        workroot,
                        args,
                    )
    if len(brokers) == 2:
        print(comparison_table(results, brokers[0].name, brokers[1].name))
    if args.json:
        meta = {
            "argv": sys.argv[1:],
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "brokers": {b.name: b.templates for b in brokers},
        }
        Path(args.json).write_text(
            json.dumps(
                {"meta": meta, "results": [dataclasses.asdict(r) for r in results]}, indent=1
            )
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
