"""/healthz of a standalone console on a PostgreSQL log: the daemon is found by its lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.model import TransportStatus
from events.postgres import Lease
from pipeline.tools._where import Where
from pipeline.tools.web import Console, create_app
from tests.pg_support import log_name, module_schema, pg_log, require_server, schema_url
from tests.web.conftest import text_of
from tests.web.test_pages import asgi_client

require_server()
pytestmark = pytest.mark.anyio
__all__ = ["module_schema"]  # the fixture: this module's own schema

NUMBER = "491700000042"


@pytest.fixture
def where(tmp_path: Path, schema: str) -> Where:
    """A number's log on PostgreSQL ending as a running daemon's does: connected."""
    with pg_log(tmp_path / "events.db") as log:
        log.append(TransportStatus(state="connected", detail="stdio"))
    return Where(tmp_path, schema_url(schema), log_name(tmp_path / "events.db"))


async def _healthz(where: Where) -> tuple[int, list[str]]:
    console = Console(where)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            response = await client.get("/healthz")
    finally:
        console.close()
    return response.status_code, response.text.splitlines()


async def test_no_daemon_holding_the_numbers_lease_is_unhealthy(where: Where) -> None:
    status, lines = await _healthz(where)
    assert status == 503
    assert lines[1].startswith(f"daemon: FAIL: no daemon is running on number {where.number} (")


async def test_a_daemon_on_any_machine_holding_the_lease_is_seen(where: Where, schema: str) -> None:
    assert where.number is not None
    lease = Lease(schema_url(schema), name=where.number)
    assert lease.take("pid 7 on vps1")
    try:
        status, lines = await _healthz(where)
    finally:
        lease.release()
    assert status == 200, lines
    assert lines[:2] == ["ok: all checks pass", "daemon: ok: running (pid 7 on vps1)"]


async def test_the_footer_names_the_numbers_log_on_the_server_not_a_local_store(
    where: Where, schema: str
) -> None:
    console = Console(where)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            footer = text_of((await client.get("/")).text).rsplit("Read-only view of", 1)[1]
    finally:
        console.close()
    assert footer.startswith(
        f" the log of number {where.number} on postgresql://postgres@127.0.0.1:5432/test "
        f"(schema {schema}) · log up to seq "
    )
    assert str(where.store) not in footer
