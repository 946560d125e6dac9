"""A realistic event history: months of a bot serving ~200 chats, as the log would hold it.

Each inbound message runs the daemon's course (received, maybe skipped, else a
session, an LLM request with context, its answer, a planned and a sent reply),
with the detours a real log shows: retried calls and sends, final failures,
echoes of the bot's own sends, owner take-overs, bursts, vitality messages and
reconnects. Seeded, so every run folds the same history.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from events.model import (
    AnyEvent,
    ChatTurn,
    Citation,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplyPurpose,
    ReplySent,
    SessionStarted,
    TransportStatus,
    Usage,
)
from events.protocol import Keyed
from events.sqlite import SQLiteLog

OWNER = "491700000000@s.whatsapp.net"
START = 1_755_000_000.0
SYSTEM = "You are a concise, friendly assistant.\n\nAnswer in the language of the question."
PARAMS = {"temperature": 0.2, "max_output_tokens": 1024, "web_search": True}
CONFIG_HASH = "6f1c0e4b9a7d2e5f8c3b1a0d9e8f7c6b5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b"
CITATIONS = [
    Citation(url="https://www.bahn.de/angebot/regio", title="Regional tickets"),
    Citation(url="https://en.wikipedia.org/wiki/Munich", title="Munich - Wikipedia"),
]
QUESTIONS = (
    "Are we still on for dinner at 8?",
    "Can you find me a train from Berlin to Munich tomorrow morning?",
    "What's the weather like in Hamburg this weekend?",
    "How long should I boil an egg for a soft yolk?",
    "Remind me what we said about the hotel in Lisbon",
    "Which museums are open on Monday in Vienna?",
    "Translate 'see you soon' into Portuguese please",
    "Is the A7 closed near Kassel today?",
    "ok thanks!",
    "What is a good gift for a 10 year old who likes science?",
)
ANSWERS = (
    "The earliest ICE leaves Berlin Hbf at 06:29 and reaches München Hbf at 10:32 [1].",
    "Saturday looks dry with 14 °C and light wind; Sunday brings showers after noon.",
    "For a soft yolk, lower the egg into boiling water and cook it for 6 to 7 minutes.",
    "You shortlisted two hotels in Alfama, both around 120 EUR a night with breakfast.",
    "Most state museums close on Mondays, but the Albertina and the Belvedere are open [2].",
    "'See you soon' is 'até logo' or, more casually, 'até já'.",
    "A microscope kit or a crystal-growing set are popular and under 40 EUR.",
    "You're welcome! Let me know if you need anything else.",
)


@dataclass
class _Person:
    jid: str
    name: str
    lid: str | None  # the hidden @lid id WhatsApp sometimes sends instead


@dataclass
class _Chat:
    jid: str
    members: list[_Person]
    group: bool
    session: str | None = None
    last_active: float = 0.0
    turns: list[ChatTurn] = field(default_factory=list)


def _chats(rng: random.Random, count: int) -> list[_Chat]:
    groups = max(1, count // 7)
    people = [
        _Person(f"4917{10_000_000 + n:08d}@s.whatsapp.net", f"Person {n}", _lid(rng, n))
        for n in range(count * 2)
    ]
    chats = [_Chat(p.jid, [p], group=False) for p in people[: count - groups]]
    for g in range(groups):
        members = rng.sample(people, rng.randint(3, 8))
        chats.append(_Chat(f"1203630000{g:08d}@g.us", members, group=True))
    return chats


def _lid(rng: random.Random, n: int) -> str | None:
    return f"{rng.getrandbits(48)}@lid" if n % 3 == 0 else None


class _History:
    """The generator: a clock, the chats with their open sessions, and the records so far."""

    def __init__(self, rng: random.Random, chats: int) -> None:
        self.rng = rng
        self.chats = _chats(rng, chats)
        # A few chats are busy, most are quiet, as in real use.
        self.busy = list(itertools.accumulate(rng.paretovariate(1.2) for _ in self.chats))
        self.now = START
        self.next_vitality = START + 86_400
        self.out: list[Recorded] = []

    def emit(self, event: AnyEvent, key: str | None = None, after: float = 0.05) -> None:
        self.now += after
        self.out.append(Recorded(len(self.out) + 1, round(self.now, 6), event, key))

    def id(self, prefix: str = "") -> str:
        return f"{prefix}{self.rng.getrandbits(80):020X}"

    def step(self) -> None:
        self.now += self.rng.expovariate(1 / 40)
        if self.now >= self.next_vitality:
            self.next_vitality += 86_400
            self.reply(OWNER, "Bot alive", purpose="vitality")
        if self.rng.random() < 0.001:
            self.emit(TransportStatus(state="disconnected", detail="stream error 515"))
            self.emit(TransportStatus(state="connected"), after=3.0)
        (chat,) = self.rng.choices(self.chats, cum_weights=self.busy)
        self.converse(chat)

    def message(
        self,
        chat: _Chat,
        person: _Person,
        text: str,
        *,
        after: float = 0.4,
        from_me: bool = False,
        msg_id: str | None = None,
    ) -> str:
        msg_id = msg_id or self.id("3EB0")
        alt = person.lid if self.rng.random() < 0.3 else None
        event = MessageReceived(
            chat=chat.jid,
            msg_id=msg_id,
            sender=person.jid,
            sender_alt=alt,
            push_name=person.name,
            text=text,
            from_me=from_me,
            is_group=chat.group,
            sent_at=round(self.now, 3),
        )
        self.emit(event, key=f"{chat.jid}/{msg_id}", after=after)
        return msg_id

    def skip(self, chat: _Chat, msg_id: str, reason: str) -> None:
        self.emit(MessageSkipped(chat=chat.jid, msg_id=msg_id, reason=reason))

    def converse(self, chat: _Chat) -> None:
        rng = self.rng
        person = rng.choice(chat.members)
        text = rng.choice(QUESTIONS)
        first = self.message(chat, person, text)
        if chat.group and rng.random() < 0.6:
            self.skip(chat, first, "not_triggered")
            return
        if not chat.group and rng.random() < 0.01:
            owner = _Person(OWNER, "Me", None)
            taken = self.message(chat, owner, "I'll handle this one", from_me=True)
            self.skip(chat, taken, "takeover")
        trigger = [first]
        if rng.random() < 0.15:  # a burst: two messages become one turn
            more = rng.choice(QUESTIONS)
            trigger.append(self.message(chat, person, more, after=2.0))
            text = f"{text}\n{more}"
        self.answer(chat, person, trigger, text)

    def answer(self, chat: _Chat, person: _Person, trigger: list[str], text: str) -> None:
        rng = self.rng
        if chat.session is None or self.now - chat.last_active > 3600:
            reason: Literal["new", "expired"] = "new" if chat.session is None else "expired"
            chat.session, chat.turns = self.id(), []
            self.emit(
                SessionStarted(
                    chat=chat.jid, session_id=chat.session, user=person.jid, reason=reason
                ),
                after=2.0,
            )
        call_id = self.id()
        messages = [ChatTurn("system", SYSTEM), *chat.turns, ChatTurn("user", text)]
        self.emit(
            LlmRequested(
                chat=chat.jid,
                call_id=call_id,
                session_id=chat.session,
                trigger_ids=trigger,
                model="perplexity/sonar",
                params=PARAMS,
                messages=messages,
                config_hash=CONFIG_HASH,
                user=person.jid,
            )
        )
        chat.last_active = self.now
        if rng.random() < 0.03:
            self.emit(
                LlmFailed(
                    chat=chat.jid, call_id=call_id, status=429, error="rate limited", final=False
                ),
                after=1.0,
            )
        if rng.random() < 0.01:
            self.emit(
                LlmFailed(
                    chat=chat.jid,
                    call_id=call_id,
                    status=500,
                    error="Internal server error",
                    attempt=4,
                    final=True,
                ),
                after=9.0,
            )
            return
        content = " ".join(rng.sample(ANSWERS, rng.randint(1, 3)))
        latency = rng.uniform(1500, 6000)
        self.emit(
            LlmCompleted(
                chat=chat.jid,
                call_id=call_id,
                content=content,
                citations=CITATIONS,
                latency_ms=latency,
                finish_reason="completed",
                usage=Usage(input_tokens=180, output_tokens=90, total_tokens=270, cost_usd=0.0061),
            ),
            after=latency / 1000,
        )
        chat.turns = [*chat.turns, ChatTurn("user", text), ChatTurn("assistant", content)][-4:]
        wa_id = self.reply(chat.jid, content, call_id=call_id, trigger=trigger)
        if rng.random() < 0.1:  # the bot's own send comes back from WhatsApp
            self.message(chat, _Person(OWNER, "Me", None), content, from_me=True, msg_id=wa_id)
            self.skip(chat, wa_id, "echo")

    def reply(
        self,
        chat: str,
        text: str,
        *,
        purpose: ReplyPurpose = "reply",
        call_id: str | None = None,
        trigger: Iterable[str] = (),
    ) -> str:
        reply_id, wa_id = self.id(), self.id("WB")
        trigger_ids = list(trigger)
        self.emit(
            ReplyPlanned(
                chat=chat,
                reply_id=reply_id,
                purpose=purpose,
                text=text,
                call_id=call_id,
                wa_id=wa_id,
                trigger_ids=trigger_ids,
                in_reply_to=trigger_ids[-1] if trigger_ids else None,
            ),
            after=0.0,
        )
        if self.rng.random() < 0.02:
            self.emit(
                ReplyFailed(chat=chat, reply_id=reply_id, error="timed out", final=False), after=5.0
            )
        self.emit(
            ReplySent(chat=chat, reply_id=reply_id, wa_id=wa_id, sent_at=self.now + 0.3), after=0.3
        )
        return wa_id


def history(size: int, *, chats: int = 200, seed: int = 7) -> list[Recorded]:
    """``size`` records (seq 1..size) of a bot's life, the way its log would replay them."""
    gen = _History(random.Random(seed), chats)
    config = {"session_memory": {"mode": "idle", "ttl_minutes": 60, "max_messages": 4}}
    gen.emit(ConfigLoaded(hash=CONFIG_HASH, config=config, path="app.json"))
    gen.emit(TransportStatus(state="connected"))
    while len(gen.out) < size:
        gen.step()
    return gen.out[:size]


def sample_message(n: int, chat: str = "491701234567@s.whatsapp.net") -> MessageReceived:
    """One typical inbound text message (its JSON body is about 320 bytes)."""
    return MessageReceived(
        chat=chat,
        msg_id=f"3EB0{n:016X}",
        sender=chat,
        push_name="Alice",
        text=QUESTIONS[n % len(QUESTIONS)],
        sent_at=START + n,
    )


def write_log(path: Path, records: list[Recorded], *, burst: int = 1000) -> None:
    """Append ``records`` to a new log at ``path``; each burst takes its first record's time."""
    clock = _Clock()
    log = SQLiteLog(path, clock=clock)
    try:
        for start in range(0, len(records), burst):
            chunk = records[start : start + burst]
            clock.now = chunk[0].ts
            log.append(*(_item(rec) for rec in chunk))
    finally:
        log.close()


class _Clock:
    now = START

    def __call__(self) -> float:
        return self.now


def _item(rec: Recorded) -> AnyEvent | Keyed:
    return rec.event if rec.key is None else Keyed(rec.event, rec.key)
