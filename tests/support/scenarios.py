"""Scenarios run by another language's client: a program that prints what the client saw as
one JSON object on its last line of output, so the assertions can stay in Python."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

from tests.support.broker import BrokerProcess


def run_scenario(
    command: list[str], broker: BrokerProcess, scenario: str, topic_prefix: str, *args: str
) -> dict[str, Any]:
    """Run `command BOOTSTRAP SCENARIO TOPIC [ARGS]` on a fresh topic name; its JSON."""
    topic = f"{topic_prefix}-{scenario}-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [*command, broker.bootstrap, scenario, topic, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])
