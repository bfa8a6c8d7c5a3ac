"""Counters and histograms for the hot path, read by Prometheus only at scrape time.

A prometheus_client Counter.inc() or Histogram.observe() is a handful of Python calls
and a lock; a broker counting every request and every partition it appends to pays that
several times per request. A Tally is a plain number and a Buckets one bisect and two
additions, both only ever touched on the event loop; `TallyCollector` turns them into
ordinary counter and histogram families when the registry is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class Tally:
    """One counter series: add to `value`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class Buckets:
    """One histogram series with fixed upper bounds."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """Per bucket, not cumulative; the last one is +Inf."""
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


@dataclass(slots=True)
class TallyFamily:
    """A metric family of tallies (or of Buckets), its series keyed by label values."""

    name: str
    documentation: str
    labelnames: tuple[str, ...]
    bounds: tuple[float, ...] | None
    """None for a counter family."""
    series: dict[tuple[str, ...], Tally | Buckets] = field(default_factory=dict)


class TallyCollector(Collector):
    """The families of Tally and Buckets series of one registry."""

    def __init__(self) -> None:
        self._families: list[TallyFamily] = []

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> TallyFamily:
        """A counter family; `name` without the `_total` suffix."""
        family = TallyFamily(name, documentation, tuple(labelnames), None)
        self._families.append(family)
        return family

    def histogram(
        self,
        name: str,
        documentation: str,
        bounds: Sequence[float],
        labelnames: Sequence[str] = (),
    ) -> TallyFamily:
        family = TallyFamily(name, documentation, tuple(labelnames), tuple(bounds))
        self._families.append(family)
        return family

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            if family.bounds is None:
                yield self._counter(family)
            else:
                yield self._histogram(family, family.bounds)

    @staticmethod
    def _counter(family: TallyFamily) -> Metric:
        metric = CounterMetricFamily(
            family.name, family.documentation, labels=family.labelnames
        )
        for labels, tally in list(family.series.items()):
            assert isinstance(tally, Tally)
            metric.add_metric(list(labels), tally.value)
        return metric

    @staticmethod
    def _histogram(family: TallyFamily, bounds: tuple[float, ...]) -> Metric:
        metric = HistogramMetricFamily(
            family.name, family.documentation, labels=family.labelnames
        )
        edges = [floatToGoString(bound) for bound in bounds] + ["+Inf"]
        for labels, series in list(family.series.items()):
            assert isinstance(series, Buckets)
            cumulative, running = [], 0
            for edge, count in zip(edges, series.counts, strict=True):
                running += count
                cumulative.append((edge, running))
            metric.add_metric(list(labels), cumulative, series.total)
        return metric


def tally(family: TallyFamily, *labels: str) -> Tally:
    """The family's counter series for `labels`, made on first use."""
    series = family.series.get(labels)
    if series is None:
        series = family.series[labels] = Tally()
    assert isinstance(series, Tally)
    return series


def buckets(family: TallyFamily, *labels: str) -> Buckets:
    """The family's histogram series for `labels`, made on first use."""
    series = family.series.get(labels)
    if series is None:
        assert family.bounds is not None
        series = family.series[labels] = Buckets(family.bounds)
    assert isinstance(series, Buckets)
    return series


def forget(family: TallyFamily, *labels: str) -> None:
    family.series.pop(labels, None)
