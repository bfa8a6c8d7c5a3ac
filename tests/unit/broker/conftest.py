"""An in-process broker on each metadata backend, for tests that must interleave a
client's requests with the broker's event loop turn by turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamhouse.broker.server import Broker
from streamhouse.broker.settings import BrokerSettings
from tests.unit.storage.support import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Broker]:
    database = None
    metadata = None
    if request.param == "postgres":
        database = await create_pg_database()
        metadata = f"postgresql://postgres@127.0.0.1:5432/{database}"
    broker = Broker(
        BrokerSettings(listen="127.0.0.1:0", http="off", data_dir=tmp_path, metadata=metadata)
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
        if database is not None:
            await drop_pg_database(database)
