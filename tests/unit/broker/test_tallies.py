"""Tallies reach a scraper as ordinary Prometheus counters and histograms."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamhouse.broker.tallies import TallyCollector, buckets, forget, tally


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_and_histograms_are_exported_with_cumulative_buckets() -> None:
    registry = CollectorRegistry()
    tallies = TallyCollector()
    registry.register(tallies)
    requests = tallies.counter("demo_requests", "Requests.", ["api"])
    latency = tallies.histogram("demo_seconds", "Latency.", (0.01, 0.1, 1.0), ["api"])
    tally(requests, "produce").value += 3
    tally(requests, "fetch").value += 1
    for seconds in (0.005, 0.01, 0.05, 0.5, 7.0):
        buckets(latency, "produce").observe(seconds)

    samples = scrape(registry)
    assert samples[("demo_requests_total", (("api", "produce"),))] == 3
    assert samples[("demo_requests_total", (("api", "fetch"),))] == 1
    edges = {"0.01": 2, "0.1": 3, "1.0": 4, "+Inf": 5}  # an observation on a bound is in it
    for edge, count in edges.items():
        assert samples[("demo_seconds_bucket", (("api", "produce"), ("le", edge)))] == count
    assert samples[("demo_seconds_count", (("api", "produce"),))] == 5
    assert abs(samples[("demo_seconds_sum", (("api", "produce"),))] - 7.565) < 1e-9


def test_a_forgotten_series_is_no_longer_exported() -> None:
    registry = CollectorRegistry()
    tallies = TallyCollector()
    registry.register(tallies)
    records = tallies.counter("demo_records", "Records.", ["topic"])
    tally(records, "kept").value += 1
    tally(records, "deleted").value += 1
    forget(records, "deleted")

    names = {labels for name, labels in scrape(registry) if name == "demo_records_total"}
    assert names == {(("topic", "kept"),)}
