"""The console beside a compaction: what went is gone from every page, without a recount."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.backends import open_log
from events.model import Recorded
from events.protocol import Selection
from pipeline.tools.web import Console, create_app
from tests.e2e.harness import ALICE
from tests.web.conftest import WebStore, text_of
from tests.web.test_pages import asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def _row(listing: str, name: str) -> str:
    found = re.search(
        rf'<tr class="chat-row">(?:(?!</tr>).)*?>{name}</bdi></a>.*?</tr>', listing, re.DOTALL
    )
    assert found is not None, text_of(listing)  # the whole page: seen once under load only
    return found.group(0)


class CountingReads:
    """The console's log, noting every read from the start of the log."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self.full_reads = 0

    def read(self, after: int = 0, **kw: Any) -> Iterator[Recorded]:
        if after == 0 and kw.get("chats") is None:
            self.full_reads += 1
        records: Iterator[Recorded] = self._log.read(after, **kw)
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


async def test_a_forgotten_chat_is_gone_from_search_and_the_chat_list(
    web_store: WebStore, tmp_path: Path
) -> None:
    store = web_store.recording.copy(tmp_path / "copy").store
    console = Console(store)
    reads = CountingReads(console.log)
    console.log = reads
    console._runner._log = reads  # the runner reads through the same log
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            assert "2 messages containing “Florence”" in text_of(
                await page(client, "/search?q=Florence")
            )
            assert "never" not in _row(await page(client, "/"), "Alice")
            with open_log(store) as log:
                assert log.compact("forget", Selection(chats=frozenset({ALICE}))) is not None

            assert "Nothing contains “Florence”" in text_of(
                await page(client, "/search?q=Florence")
            )
            # Still listed (monitored), but with nothing recorded.
            assert "never" in _row(await page(client, "/"), "Alice")
    finally:
        console.close()
    assert reads.full_reads == 0
