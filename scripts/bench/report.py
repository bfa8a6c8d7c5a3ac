"""Tables of benchmark results: one per broker run, and medians with B/A ratios for pairs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from bench.scenarios import Result

# (column title, Result attribute, format); higher is better unless listed in LOWER_IS_BETTER.
COLUMNS = [
    ("msg/s", "msg_s", "{:,.0f}"),
    ("MB/s", "mb_s", "{:.1f}"),
    ("rec/CPU-s", "rec_per_cpu_s", "{:,.0f}"),
    ("CPU s", "broker_cpu_s", "{:.2f}"),
    ("client %", "client_cpu_pct", "{:.0f}"),
    ("RSS MB", "peak_rss_mb", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("max ms", "max_ms", "{:.1f}"),
    ("first s", "first_record_s", "{:.3f}"),
]


def _cell(value: float | None, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _median(values: list[float], fmt: str) -> str:
    return _cell(statistics.median(values), fmt) if values else "-"


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def run_table(results: list[Result]) -> str:
    """One broker start: a row per scenario, FAILED rows carry the reason."""
    first = results[0]
    title = f"== {first.broker} / {first.backend} / rep {first.rep + 1}"
    rows = []
    failures = []
    for r in results:
        if r.ok:
            rows.append([r.scenario, *(_cell(getattr(r, attr), fmt) for _, attr, fmt in COLUMNS)])
        else:
            rows.append([r.scenario, "FAILED", *[""] * (len(COLUMNS) - 1)])
            failures.append(f"  {r.scenario}: FAILED {r.reason}")
    return "\n".join([title, _render(["scenario", *(c[0] for c in COLUMNS)], rows), *failures])


def comparison_table(results: Iterable[Result], a: str, b: str) -> str:
    """Medians of A and B per backend, scenario and metric, with each repetition's B/A."""
    grouped: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    order: list[tuple[str, str, str]] = []
    for r in results:
        if not r.ok:
            continue
        for title, attr, _ in COLUMNS:
            value = getattr(r, attr)
            if value is None or attr in ("broker_cpu_s", "client_cpu_pct"):
                continue
            key = (r.backend, r.scenario, title)
            if key not in grouped:
                grouped[key] = {a: [], b: []}
                order.append(key)
            grouped[key].setdefault(r.broker, []).append(value)
    fmts = {title: fmt for title, _, fmt in COLUMNS}
    rows = []
    for key in order:
        va, vb = grouped[key][a], grouped[key][b]
        # Repetitions pair up in order; a repetition where one side failed has no ratio.
        ratios = [y / x if x else float("nan") for x, y in zip(va, vb, strict=False)]
        fmt = fmts[key[2]]
        rows.append(
            [
                key[0],
                key[1],
                key[2],
                _median(va, fmt),
                _median(vb, fmt),
                f"{statistics.median(ratios):.2f}" if ratios else "-",
                " ".join(f"{x:.2f}" for x in ratios),
            ]
        )
    header = ["backend", "scenario", "metric", f"A={a}", f"B={b}", "B/A med", "B/A per rep"]
    return f"== medians, A={a} vs B={b}\n" + _render(header, rows)
