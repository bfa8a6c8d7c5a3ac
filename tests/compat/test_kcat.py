"""kcat (Debian's 1.7.1, bundling librdkafka 2.0.2) produces, consumes and lists metadata."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.broker import BrokerProcess


@pytest.fixture(scope="module")
def kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        pytest.fail("kcat is not installed; scripts/test installs it from Debian's packages")
    return path


def run(kcat: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([kcat, *args], input=stdin, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_and_consume(
    broker: BrokerProcess, kcat: str, topic_name: str, codec: str
) -> None:
    lines = [f"k{i}:line {i}" for i in range(50)]
    produced = run(
        kcat,
        "-b",
        broker.bootstrap,
        "-t",
        topic_name,
        "-P",
        "-K:",
        "-z",
        codec,
        stdin="\n".join(lines).encode() + b"\n",
    )
    assert produced.returncode == 0, produced.stderr.decode()
    consumed = run(
        kcat,
        "-b",
        broker.bootstrap,
        "-t",
        topic_name,
        "-C",
        "-o",
        "beginning",
        "-e",
        "-f",
        "%k:%s:%o\n",
    )
    assert consumed.returncode == 0, consumed.stderr.decode()
    got = consumed.stdout.decode().splitlines()
    assert got == [f"k{i}:line {i}:{i}" for i in range(50)]


def test_kcat_metadata_lists_topic_and_broker(
    broker: BrokerProcess, kcat: str, topic_name: str
) -> None:
    created = run(kcat, "-b", broker.bootstrap, "-t", topic_name, "-P", stdin=b"x\n")
    assert created.returncode == 0, created.stderr.decode()
    listing = run(kcat, "-b", broker.bootstrap, "-L", "-J")
    assert listing.returncode == 0, listing.stderr.decode()
    metadata = json.loads(listing.stdout)
    assert [b["name"] for b in metadata["brokers"]] == [broker.bootstrap]
    topics = {t["topic"]: t for t in metadata["topics"]}
    assert topics[topic_name]["partitions"][0]["leader"] == metadata["brokers"][0]["id"]
