"""Java programs under tests/compat/java, compiled once and run against Kafka's own jars.

scripts/test installs the JDK and puts the jars in tests/compat/java/lib with
scripts/fetch_java_libs.py; a missing piece fails the test that needs it, never skips it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.fetch_java_libs import JARS

JAVA_DIR = Path(__file__).parents[1] / "compat" / "java"
LIB_DIR = JAVA_DIR / "lib"
FETCH_HINT = "run: python scripts/fetch_java_libs.py tests/compat/java/lib"


def java_command(source: Path, classes: Path) -> list[str]:
    """Compile `source` into `classes`; the command that runs its class with the jars."""
    java, javac = shutil.which("java"), shutil.which("javac")
    if java is None or javac is None:
        pytest.fail("a JDK 17 or later (java and javac) is needed; scripts/test installs "
                    "Debian's openjdk-17-jdk-headless")
    missing = [name for name in JARS if not (LIB_DIR / name).is_file()]
    if missing:
        pytest.fail(f"Kafka's jars are missing from {LIB_DIR} ({', '.join(missing)}); "
                    f"{FETCH_HINT}")
    compiled = subprocess.run(
        [javac, "-nowarn", "-d", str(classes), "-cp", str(LIB_DIR / "*"), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    return [java, "-cp", os.pathsep.join([str(LIB_DIR / "*"), str(classes)]), source.stem]
