"""Reading a broker's Prometheus endpoint the way a scraper does."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.broker import BrokerProcess


def counter_total(broker: BrokerProcess, name: str) -> float:
    """The value of counter `name` (its `_total` samples summed over labels)."""
    text = urllib.request.urlopen(broker.http_url + "/metrics", timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == name.removesuffix("_total"):
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    raise AssertionError(f"the broker exports no {name}")
