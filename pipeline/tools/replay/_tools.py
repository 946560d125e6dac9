"""A replayed turn's tool calls, answered without running a tool.

Replay never acts: nothing it does reaches the log, WhatsApp or anything a
tool would change. A call the new answer makes is given the recorded result
where the recorded turn made the same call (same name, same arguments), else
a simulated one: the tool's pure handler run on the chat's reminders and
facts as they were at the call (``Inputs``; else on an empty view), its
events thrown away. Either way the report says which (``ToolTrace.source``). A
simulated ``stay_silent`` ends the replayed turn as silent, as it would have.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.model import ToolCall
from pipeline import toolbox
from pipeline.config import AppConfig
from projections import facts
from projections.calls import Call, ToolTrace
from projections.fold import States


@dataclass(frozen=True, slots=True)
class Answered:
    trace: ToolTrace
    silent: str | None  # the call ends the turn without a reply, for this reason


def answer(
    call: Call, made: ToolCall, offered: list[str], config: AppConfig, round_: int
) -> Answered:
    """The result the replayed model gets for ``made``, never by running the tool."""
    scene = toolbox.Scene(_view(call), call.request.chat, call.ts, config, made.id)
    simulated = toolbox.run(scene, made, offered)  # pure: its events are dropped
    recorded = next(
        (
            t
            for t in call.outcome.tools
            if (t.name, t.arguments) == (made.name, made.arguments) and t.output is not None
        ),
        None,
    )
    if recorded is not None:
        trace = ToolTrace(
            round=round_,
            name=made.name,
            arguments=made.arguments,
            output=recorded.output,
            error=recorded.error,
        )
    else:
        trace = ToolTrace(
            round=round_,
            name=made.name,
            arguments=made.arguments,
            output=toolbox.output_text(simulated.output),
            error=simulated.error,
            source="simulated",
        )
    return Answered(trace=trace, silent=simulated.silent)


def _view(call: Call) -> States:
    """What the tools of ``call``'s chat read, as it was at the call."""
    view = States()
    if call.inputs is None:
        return view
    chat = call.request.chat
    for reminder in call.inputs.pending:
        view.reminders.pending[reminder.reminder_id] = reminder
        view.reminders.due.append((reminder.at, reminder.reminder_id))
    view.reminders.due.sort()
    view.facts.chats[chat] = [
        facts.Fact(text=text, chat=chat, seq=n, ts=call.ts)
        for n, text in enumerate(call.inputs.facts)
    ]
    return view
