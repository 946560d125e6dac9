"""A message the log cannot take in time is held, then recorded once the log is back."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from events.protocol import Keyed
from pipeline.daemon import _outage_buffer
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._outage_buffer import OutageBuffer
from tests.test_folded_log import HeldLog, msg, pending


@pytest.mark.anyio
async def test_an_append_the_log_holds_up_is_held_then_recorded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_outage_buffer, "HOLD_AFTER", 0.05)
    log = HeldLog(tmp_path / "events.db", before=True)  # the database away: nothing commits
    folded = FoldedLog(log)
    folded.watch()
    buffer = OutageBuffer(folded)
    slow = Keyed(msg(1, "slow"), "m1")
    # Returns once the wait for the log is given up, not when the log answers (30 s).
    with anyio.fail_after(10):
        await buffer.record(slow)
        await buffer.record(Keyed(msg(2), "m2"))  # held behind it, so order is kept
    assert buffer.held == 2
    assert pending(folded) == []
    log.release.set()  # the abandoned append commits; its held copy is then a no-op
    woken = folded.waker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(buffer.run)
        with anyio.fail_after(30):
            while buffer.held or pending(folded) != ["m1", "m2"]:
                await woken.wait(1)
        tg.cancel_scope.cancel()
    assert [r.event.msg_id for r in log.read()] == ["m1", "m2"]  # type: ignore[union-attr]
    log.close()
