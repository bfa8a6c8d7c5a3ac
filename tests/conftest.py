"""Fixtures shared by every test package."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import BrokerProcess

pytest_plugins = ["tests.support.fixtures"]

_topic_counter = itertools.count()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker process on the embedded default, shared by the tests of one module."""
    data_dir: Path = tmp_path_factory.mktemp("broker") / "data"
    with BrokerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    base = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:80]
    return f"{base}-{next(_topic_counter)}-{uuid.uuid4().hex[:6]}"
