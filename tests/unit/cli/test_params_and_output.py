"""Option parsing and table layout of the admin CLI."""

from __future__ import annotations

import click
import pytest

from streamhouse.cli.output import table
from streamhouse.cli.params import key_values, timestamp_ms
from streamhouse.client.connection import Address


def test_key_values_split_at_the_first_equals_sign() -> None:
    assert key_values(["a=1", "b=x=y", "c="], "--set") == {"a": "1", "b": "x=y", "c": ""}


@pytest.mark.parametrize("bad", ["novalue", "=1"])
def test_key_values_without_a_key_or_equals_is_a_usage_error(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        key_values([bad], "--set")


@pytest.mark.parametrize(("text", "expected"), [
    ("1700000000123", 1_700_000_000_123),
    ("2023-11-14T22:13:20Z", 1_700_000_000_000),
    ("2023-11-14T22:13:20", 1_700_000_000_000),  # no zone: UTC
    ("2023-11-15T00:13:20+02:00", 1_700_000_000_000),
])
def test_timestamps_are_epoch_ms_or_iso_8601(text: str, expected: int) -> None:
    assert timestamp_ms(text, "--to-datetime") == expected


def test_unparseable_timestamp_is_a_usage_error() -> None:
    with pytest.raises(click.BadParameter):
        timestamp_ms("yesterday", "--to-datetime")


@pytest.mark.parametrize(("text", "host", "port"), [
    ("localhost:9092", "localhost", 9092),
    ("broker-1", "broker-1", 9092),
    ("[::1]:19092", "::1", 19092),
    (" 10.0.0.1:1 ", "10.0.0.1", 1),
])
def test_broker_addresses(text: str, host: str, port: int) -> None:
    assert Address.parse(text) == Address(host, port)


@pytest.mark.parametrize("bad", ["host:port", ":9092"])
def test_bad_broker_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        Address.parse(bad)


def test_table_columns_are_aligned_and_empty_cells_show_a_dash() -> None:
    text = table(["TOPIC", "PARTITIONS", "ISR"], [["orders", 12, [0, 1]], ["t", 1, []]])
    assert text.splitlines() == [
        "TOPIC   PARTITIONS  ISR",
        "orders  12          0,1",
        "t       1           -",
    ]
