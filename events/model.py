"""The event catalogue: one frozen msgspec Struct per fact the bot records.

Type names and fields are a contract (docs/events.md lists them all). Schema
changes only add optional fields with defaults; history is never rewritten.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

import msgspec

MessageKind = Literal["text", "image", "video", "audio", "document", "sticker", "other"]
ReplyPurpose = Literal["reply", "debug", "vitality", "startup", "alert", "reminder", "command"]
StartReason = Literal["new", "expired", "config_changed", "reset"]
TransportState = Literal[
    "connecting",
    "qr",
    "connected",
    "disconnected",
    "logged_out",
    "replaced",
    "outdated",
    "banned",
    "stopped",
]
AlertKind = Literal[
    "logged_out",
    "replaced",
    "outdated",
    "banned",
    "budget",
    "llm_failing",
    "transcription_failing",
    "restricted",
    "undelivered",
    "connection_down",
]
# What WhatsApp calls the attachment; a voice note is a recorded (PTT) audio message.
MediaKind = Literal["voice", "audio", "image", "video", "document", "sticker"]
# Why an attachment's bytes are not there to use: the sender is told (but for ``disabled``).
MediaProblem = Literal["too_large", "download_failed", "unsupported", "corrupt", "disabled"]
# Why a message WhatsApp handed over has no content for us.
UndecryptableReason = Literal["view_once", "decrypt_failed", "unavailable"]
# What WhatsApp reports about a message the bot sent, in the order it happens.
ReceiptState = Literal["server", "delivered", "read", "played"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Base of every event; ``chat`` is copied to the envelope column."""

    chat: str = ""


class ImageRef(msgspec.Struct, frozen=True, kw_only=True):
    """An image sent with a turn: the stored file ``STORE/media/<sha256>`` and its type."""

    sha256: str
    mime: str


class ChatTurn(msgspec.Struct, frozen=True, omit_defaults=True):
    """One role/content item of an LLM request; ``images`` go with the newest user turn only."""

    role: Literal["system", "user", "assistant"]
    content: str
    images: tuple[ImageRef, ...] = ()


class Citation(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    title: str = ""


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None


class Quoted(msgspec.Struct, frozen=True, kw_only=True):
    """A message quoted by another: its id, and its text and author when known."""

    id: str
    text: str = ""
    sender: str | None = None


class Media(msgspec.Struct, frozen=True, kw_only=True):
    """An attachment of a message: what it is and where its bytes are.

    ``sha256`` names the stored file ``STORE/media/<sha256>`` ("" when nothing
    was stored); ``size`` is in bytes (as declared when nothing was stored).
    ``problem`` says why the bytes are not there to use, ``detail`` in words.
    """

    kind: MediaKind
    mime: str = ""
    size: int = 0
    sha256: str = ""
    seconds: float | None = None  # voice notes, audio and video
    file_name: str | None = None  # documents
    problem: MediaProblem | None = None
    detail: str = ""
    # The bytes were still to be fetched when the message was recorded: a
    # ``MediaFetched`` of the same message says how that ended.
    fetching: bool = False


class ConfigLoaded(Event, frozen=True, kw_only=True):
    hash: str
    config: dict[str, Any]
    path: str
    # The replay experiment this app.json was applied from (``replay.py apply``), if any.
    experiment: str | None = None


class MessageReceived(Event, frozen=True, kw_only=True):
    msg_id: str
    sender: str
    sender_alt: str | None = None
    push_name: str | None = None
    text: str = ""
    kind: MessageKind = "text"
    from_me: bool = False
    is_group: bool = False
    sent_at: float = 0.0  # unix seconds, as the sender's device stamped it
    quoted_id: str | None = None
    mentions: list[str] = []
    # Set when ``text`` was cut to the recorded limit: the original text's size in UTF-8 bytes.
    truncated_from: int | None = None
    # The chat's other id (phone JID or LID), when the transport knows it.
    chat_alt: str | None = None
    # The id WhatsApp addressed the chat by, when it is not ``chat`` (e.g. a LID
    # for a contact monitored by phone number): replies go there.
    via: str | None = None
    quoted: Quoted | None = None
    media: Media | None = None
    # The chat's disappearing-message timer in seconds as this message carried it
    # (0: off); None: the message did not say.
    expiration: int | None = None


class MessageUndecryptable(Event, frozen=True, kw_only=True):
    """A message WhatsApp handed over without readable content (view-once on a
    linked device, a failed decryption); never any content, never answered."""

    msg_id: str
    sender: str
    reason: UndecryptableReason
    sender_alt: str | None = None
    is_group: bool = False
    from_me: bool = False
    sent_at: float = 0.0
    via: str | None = None  # the id WhatsApp addressed the chat by, when not ``chat``
    detail: str = ""


class MediaFetched(Event, frozen=True, kw_only=True):
    """The attachment of message ``msg_id``, fetched after the message was recorded:
    stored (``media.sha256``) or why not (``media.problem``, ``media.detail``)."""

    msg_id: str
    media: Media


class MessageEdited(Event, frozen=True, kw_only=True):
    """Someone changed the text of message ``msg_id``; ``text`` None: not readable.

    Recorded whoever sent it, but only its author may edit a message (as
    WhatsApp's own apps hold): ``by_author`` says whether this edit counts.
    """

    msg_id: str
    text: str | None
    edit_id: str | None = None  # WhatsApp's id of the edit itself
    # Set when ``text`` was cut to the recorded limit: the original text's size in UTF-8 bytes.
    truncated_from: int | None = None
    # Who sent the edit; None: not said (older logs, a stdin line without ``sender``).
    editor: str | None = None
    editor_alt: str | None = None  # the editor's other id (phone JID or LID), when known
    from_me: bool = False  # sent by the owner

    def by_author(self, sender: str, sender_alt: str | None, from_me: bool) -> bool:
        """Whether the author of the message edited (its ``sender``, ``sender_alt`` and
        ``from_me``) made this edit; an edit that does not say who made it counts."""
        if self.editor is None:
            return True
        if from_me or self.from_me:
            return from_me and self.from_me  # the owner's messages are the owner's to edit
        ids = {sender} if sender_alt is None else {sender, sender_alt}
        return self.editor in ids or (self.editor_alt is not None and self.editor_alt in ids)


class MessageRevoked(Event, frozen=True, kw_only=True):
    """The sender deleted message ``msg_id`` for everyone."""

    msg_id: str


class TimerChanged(Event, frozen=True, kw_only=True):
    """The chat's disappearing-message timer was set, by its message ``msg_id``.

    WhatsApp says so with a message of its own; the chat's later messages carry
    a timer that is on, but one switched off is carried by nothing else.
    """

    msg_id: str
    expiration: int  # seconds; 0: off


class MediaTranscribed(Event, frozen=True, kw_only=True):
    """The transcript of voice note or audio message ``msg_id``; replay reuses it."""

    msg_id: str
    text: str
    model: str
    cost_usd: float | None = None  # as the service reported it, else priced by the minute
    seconds: float | None = None  # the audio's length as the service measured it
    sha256: str = ""  # the file transcribed
    latency_ms: float = 0.0


class TranscriptionFailed(Event, frozen=True, kw_only=True):
    """One failed attempt at transcribing ``msg_id``; ``final``: no more tries."""

    msg_id: str
    status: int | None = None
    error: str
    attempt: int = 1
    final: bool


class DocumentRead(Event, frozen=True, kw_only=True):
    """The text of document ``msg_id``, as the model gets it; ``error``: unreadable.

    ``text`` holds at most ``limits.max_input_chars`` characters; ``cut`` says
    the document goes on beyond them.
    """

    msg_id: str
    text: str = ""
    pages: int | None = None  # PDFs
    cut: bool = False
    error: str = ""


# What the agent made of an attachment, per message.
MediaOutcome = MediaTranscribed | TranscriptionFailed | DocumentRead
MEDIA_OUTCOMES = (MediaTranscribed, TranscriptionFailed, DocumentRead)


class MessageSkipped(Event, frozen=True, kw_only=True):
    msg_id: str
    reason: str
    detail: str = ""


class SessionStarted(Event, frozen=True, kw_only=True):
    session_id: str
    user: str
    reason: StartReason


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A function call the model made: its id on the wire (Agent API ``call_id``,
    chat completions ``tool_calls[].id``), the tool's name and the arguments
    exactly as the model wrote them (a JSON string, perhaps not valid JSON)."""

    id: str
    name: str
    arguments: str


class ToolRound(msgspec.Struct, frozen=True, kw_only=True):
    """One round of a turn's tool loop, as a later request sends it back: the
    model's calls (and any text it wrote with them) and each call's output."""

    calls: list[ToolCall]
    outputs: list[str]  # one per call, in order
    content: str = ""


class LlmRequested(Event, frozen=True, kw_only=True):
    call_id: str
    session_id: str
    trigger_ids: list[str]
    model: str
    params: dict[str, Any]
    messages: list[ChatTurn]
    config_hash: str
    user: str = ""
    # The function tools offered (names; their definitions are the code's catalogue).
    tools: list[str] = []
    # The turn's earlier rounds of tool calls and their outputs, sent after ``messages``.
    rounds: list[ToolRound] = []


class LlmCompleted(Event, frozen=True, kw_only=True):
    call_id: str
    content: str
    citations: list[Citation] = []
    usage: Usage = Usage()
    latency_ms: float = 0.0
    finish_reason: str = ""
    # The model called tools: not the turn's answer yet, a round of its tool loop.
    tool_calls: list[ToolCall] = []


class ToolCalled(Event, frozen=True, kw_only=True):
    """The model asked, in LLM call ``call_id``, for tool ``name`` with ``arguments``
    (the JSON string as it wrote it); ``tool_call_id`` is the call's id on the wire."""

    call_id: str
    tool_call_id: str
    name: str
    arguments: str
    round: int = 1


class ToolFinished(Event, frozen=True, kw_only=True):
    """What tool call ``tool_call_id`` returned to the model: ``output`` (JSON text);
    ``error`` says the call was refused (unknown tool, bad arguments, not allowed)."""

    call_id: str
    tool_call_id: str
    name: str
    output: str
    error: bool = False


class ReplyWithheld(Event, frozen=True, kw_only=True):
    """The model chose not to answer (tool ``stay_silent``): the messages of LLM
    call ``call_id`` are decided, no reply goes out, and ``reason`` says why."""

    call_id: str
    reason: str
    trigger_ids: list[str] = []


class LlmFailed(Event, frozen=True, kw_only=True):
    call_id: str
    status: int | None = None
    error: str
    attempt: int = 1
    final: bool
    # What the provider billed for an answer the bot could not use (a reasoning
    # model that spent its output limit thinking); None: no answer, or none said.
    usage: Usage | None = None


class SpeechPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A reply part to be spoken: its ``text`` read aloud by ``model`` in ``voice``."""

    model: str
    voice: str


class ChatPaused(Event, frozen=True, kw_only=True):
    """The owner paused the bot in ``chat`` (``/pause``): its messages wait, unanswered.

    ``until`` (unix seconds) is when the pause ends by itself; None: at
    ``/resume``. A later ``ChatPaused`` of the chat replaces this one.
    ``msg_id``: the owner's command that paused it.
    """

    until: float | None = None
    msg_id: str = ""


class ChatResumed(Event, frozen=True, kw_only=True):
    """The owner resumed ``chat`` (``/resume``): its waiting messages are decided again."""

    msg_id: str = ""


class ReminderSet(Event, frozen=True, kw_only=True):
    """The model set a reminder (tool ``set_reminder`` in LLM call ``call_id``): at
    ``at`` (unix seconds) ``text`` goes to ``chat``, this chat and no other.

    ``reminder_id`` (``R…``) is how the model and the owner name it. Recorded in
    the same commit as the call that set it, so it is set exactly once.
    """

    reminder_id: str
    at: float
    text: str
    call_id: str = ""
    tool_call_id: str = ""


class ReminderCancelled(Event, frozen=True, kw_only=True):
    """Pending reminder ``reminder_id`` was cancelled: by the model (tool
    ``cancel_reminder``, ``call_id``), or, ``reason="not_monitored"``, by the
    scheduler when it came due in a chat no longer monitored (nothing was sent)."""

    reminder_id: str
    call_id: str = ""
    reason: Literal["asked", "not_monitored"] = "asked"


class ReminderFired(Event, frozen=True, kw_only=True):
    """Reminder ``reminder_id`` came due: ``reply_id`` is the ``ReplyPlanned``
    (purpose ``reminder``) recorded in the same commit, which the outbox sends
    once. ``missed``: it came due while the bot was down, longer ago than
    ``polling.catch_up_minutes``; the reply then says so instead of reminding.
    ``late``: seconds past ``at`` when it was planned.
    """

    reminder_id: str
    reply_id: str
    missed: bool = False
    late: float = 0.0


class FactRemembered(Event, frozen=True, kw_only=True):
    """The model kept ``fact`` about ``chat`` (tool ``remember``), for every later
    session's system prompt."""

    fact: str
    call_id: str = ""


class FactForgotten(Event, frozen=True, kw_only=True):
    """Facts of ``chat`` went: those containing ``text`` (tool ``forget_fact``,
    ``reason`` ``asked``), or the oldest, over the bound (``reason`` ``bound``).
    ``facts``: exactly which went."""

    text: str = ""
    facts: list[str] = []
    reason: Literal["asked", "bound"] = "asked"
    call_id: str = ""


class ReplyPlanned(Event, frozen=True, kw_only=True):
    reply_id: str
    purpose: ReplyPurpose
    text: str
    call_id: str | None = None
    in_reply_to: str | None = None
    wa_id: str | None = None
    trigger_ids: list[str] = []
    quoted: Quoted | None = None  # the message the WhatsApp message quotes
    part: int | None = None  # 1-based, for a reply split into ``parts`` messages
    parts: int | None = None
    # The chat whose words this message carries, filed under another (a debug note in
    # the owner's chat, an alert quoting an error about the chat): ``forget`` takes it too.
    quotes_chat: str | None = None
    # Sent as a voice note of ``text`` (``voice_replies``): the speech request, planned
    # here before it is made; its outcome is ``SpeechSynthesized`` or a final ``SpeechFailed``.
    speech: SpeechPlan | None = None

    @property
    def opens_answer(self) -> bool:
        """The first (or only) message of its answer: an answer in parts is one reply."""
        return self.part is None or self.part == 1

    @property
    def closes_answer(self) -> bool:
        """The last (or only) message of its answer."""
        return self.part is None or self.part == self.parts


class SpeechSynthesized(Event, frozen=True, kw_only=True):
    """Reply ``reply_id``'s words as speech: the Ogg Opus file ``STORE/media/<sha256>``."""

    reply_id: str
    sha256: str
    size: int
    seconds: float  # parsed from the file's Ogg pages
    model: str
    voice: str
    cost_usd: float | None = None  # priced by the minute of audio
    latency_ms: float = 0.0


class SpeechFailed(Event, frozen=True, kw_only=True):
    """One failed attempt at speaking reply ``reply_id``; ``final``: its text goes instead."""

    reply_id: str
    status: int | None = None
    error: str
    attempt: int = 1
    final: bool


class ReplySent(Event, frozen=True, kw_only=True):
    reply_id: str
    wa_id: str
    sent_at: float
    to: str | None = None  # the address the transport sent to, when it is not ``chat``


class ReplyFailed(Event, frozen=True, kw_only=True):
    reply_id: str
    error: str
    final: bool
    attempt: int = 1


class ReplyDelivered(Event, frozen=True, kw_only=True):
    """What WhatsApp reported about the sent message ``wa_id`` (one part of reply ``reply_id``).

    One fact per state and message: the first report of it. ``at`` is when
    WhatsApp says it happened (unix seconds). Reports may come out of order (a
    ``read`` before its ``delivered``); the furthest state reached is the
    highest in ``ReceiptState``'s order.
    """

    reply_id: str
    wa_id: str
    state: ReceiptState
    at: float = 0.0


class TransportStatus(Event, frozen=True, kw_only=True):
    state: TransportState
    detail: str = ""
    # The owner's own ids, as WhatsApp knows them once connected.
    me_pn: str | None = None
    me_lid: str | None = None
    # WhatsApp's number for why it refused or ended the connection (whatsmeow's
    # ConnectFailureReason: 403 locked, 406 banned, 409 client rejected, ...).
    code: int | None = None


class AccountRestricted(Event, frozen=True, kw_only=True):
    """WhatsApp restricts the owner's account from reaching out (error 463
    "reach-out timelock", 479), or (``active`` False) the restriction is over.

    An account event (no chat). While restricted, nothing is sent but to the
    owner's own chat; ``until`` (unix seconds) is when WhatsApp said it ends,
    None when it did not say. ``reply_id``: the send that met it, if one did.
    """

    active: bool = True
    code: int | None = None
    until: float | None = None
    detail: str = ""
    reply_id: str | None = None


class OwnerAlerted(Event, frozen=True, kw_only=True):
    """An alert for the owner, and whether the webhook took it (``ok``)."""

    kind: AlertKind
    ok: bool
    detail: str = ""
    error: str = ""
    # The chat whose failure ``detail`` quotes (an API's error may echo the user's
    # text): ``forget`` takes the alert with the chat.
    quotes_chat: str | None = None


class Compacted(Event, frozen=True, kw_only=True):
    """Marks a compaction: how many events went (all had ``seq < before``), why, and which.

    ``chats``, ``older_than``, ``seqs`` and ``keep`` are the selection the log
    evaluated (``events.protocol.Selection``): an event went exactly when it
    has ``seq < before`` and meets every condition given. So projections drop
    what they derived from those events without reading the log
    (``events.protocol.removal``). A marker recorded before these fields
    existed has ``keep`` None: what it removed is unknown, and the runner refolds.
    """

    reason: Literal["rotation", "expiry", "forget"]
    before: int
    removed: int
    older_than: float | None = None  # unix seconds cut-off, for rotation
    by_type: dict[str, int] = {}
    chats: list[str] | None = None  # sorted
    seqs: list[int] | None = None  # sorted
    keep: list[int] | None = None  # sorted; None: a marker that does not say what went
    by_chat: dict[str, int] = {}  # events removed per chat ("" for events of no chat)

    @classmethod
    def of(
        cls,
        reason: Literal["rotation", "expiry", "forget"],
        by_type: dict[str, int],
        last_removed: int,
        *,
        older_than: float | None = None,
        chats: Collection[str] | None = None,
        seqs: Collection[int] | None = None,
        keep: Collection[int] = (),
        by_chat: dict[str, int] | None = None,
    ) -> Compacted:
        """The marker for a compaction that removed ``by_type`` events up to ``last_removed``.

        Filed under no chat, even when it forgot one: a forgotten chat keeps no event.
        """
        return cls(
            reason=reason,
            before=last_removed + 1,
            removed=sum(by_type.values()),
            older_than=older_than,
            by_type=dict(sorted(by_type.items())),
            chats=None if chats is None else sorted(chats),
            seqs=None if seqs is None else sorted(seqs),
            keep=sorted(keep),
            by_chat=dict(sorted((by_chat or {}).items())),
        )


AnyEvent = (
    ConfigLoaded
    | MessageReceived
    | MessageEdited
    | MessageRevoked
    | TimerChanged
    | MessageUndecryptable
    | MediaFetched
    | MediaTranscribed
    | TranscriptionFailed
    | DocumentRead
    | MessageSkipped
    | ChatPaused
    | ChatResumed
    | SessionStarted
    | LlmRequested
    | LlmCompleted
    | LlmFailed
    | ToolCalled
    | ToolFinished
    | ReplyWithheld
    | ReminderSet
    | ReminderCancelled
    | ReminderFired
    | FactRemembered
    | FactForgotten
    | ReplyPlanned
    | SpeechSynthesized
    | SpeechFailed
    | ReplySent
    | ReplyFailed
    | ReplyDelivered
    | TransportStatus
    | AccountRestricted
    | OwnerAlerted
    | Compacted
)

EVENT_TYPES: tuple[type[Event], ...] = (
    ConfigLoaded,
    MessageReceived,
    MessageEdited,
    MessageRevoked,
    TimerChanged,
    MessageUndecryptable,
    MediaFetched,
    MediaTranscribed,
    TranscriptionFailed,
    DocumentRead,
    MessageSkipped,
    ChatPaused,
    ChatResumed,
    SessionStarted,
    LlmRequested,
    LlmCompleted,
    LlmFailed,
    ToolCalled,
    ToolFinished,
    ReplyWithheld,
    ReminderSet,
    ReminderCancelled,
    ReminderFired,
    FactRemembered,
    FactForgotten,
    ReplyPlanned,
    SpeechSynthesized,
    SpeechFailed,
    ReplySent,
    ReplyFailed,
    ReplyDelivered,
    TransportStatus,
    AccountRestricted,
    OwnerAlerted,
    Compacted,
)


class Recorded(msgspec.Struct, frozen=True):
    """An event as the log holds it: its position, time and idempotency key."""

    seq: int
    ts: float  # unix seconds (microsecond resolution), assigned by the log
    event: AnyEvent
    key: str | None = None

    @property
    def chat(self) -> str:
        return self.event.chat
