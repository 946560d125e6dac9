"""What was said in a group since the bot last spoke, and how it reaches the model."""

from __future__ import annotations

from typing import Any

import msgspec

from events.compaction import removed
from events.model import (
    AnyEvent,
    Media,
    MediaFetched,
    MediaTranscribed,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    Quoted,
    Recorded,
    ReplyPlanned,
)
from events.protocol import Selection
from pipeline.config import config_from_dict
from pipeline.llm import group_context, pointed_at, user_turn
from pipeline.llm._prompt import ANSWER_HEAD, CONTEXT_HEAD, CUT_MARKER
from projections import aliases, group_talk
from projections.fold import fold

GROUP = "120363000000000000@g.us"
BOB = "491702222222@s.whatsapp.net"
CAROL = "491703333333@s.whatsapp.net"
NOW = 1_764_070_000.0


def said(msg_id: str, text: str, sender: str = BOB, name: str | None = "Bob") -> MessageReceived:
    return MessageReceived(
        chat=GROUP, msg_id=msg_id, sender=sender, text=text, is_group=True, push_name=name
    )


def spoke(reply_id: str) -> ReplyPlanned:
    return ReplyPlanned(chat=GROUP, reply_id=reply_id, purpose="reply", text="ok")


def talk(*events: AnyEvent) -> group_talk.State:
    return fold([Recorded(n, NOW + n, e) for n, e in enumerate(events, 1)]).group_talk


def heard(state: group_talk.State, leave: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    return [(h.name, h.text) for h in group_talk.since_spoke(state, GROUP, leave)]


def test_only_what_was_said_since_the_bot_last_answered() -> None:
    state = talk(
        said("m1", "before"),
        spoke("r1"),
        said("m2", "Dinner at 7?"),
        said("m3", "Fine by me", sender=CAROL, name=None),
        said("m4", "@bot where?"),
    )

    assert heard(state, frozenset({"m4"})) == [
        ("Bob", "Dinner at 7?"),
        ("491703333333", "Fine by me"),
    ]


def test_edits_and_revokes_change_what_was_said() -> None:
    state = talk(
        said("m1", "at 7"),
        said("m2", "at 8"),
        MessageEdited(chat=GROUP, msg_id="m1", text="at 6"),
        MessageRevoked(chat=GROUP, msg_id="m2"),
    )

    assert heard(state) == [("Bob", "at 6")]


def test_only_the_authors_own_edit_changes_what_was_said() -> None:
    """Carol's client keys an edit to Bob's message: the group still heard Bob's words."""
    state = talk(
        said("m1", "at 7"),
        said("m2", "at 8"),
        MessageEdited(chat=GROUP, msg_id="m1", text="never", editor=CAROL),
        MessageEdited(chat=GROUP, msg_id="m2", text="at 9", editor=BOB),
    )

    assert heard(state) == [("Bob", "at 7"), ("Bob", "at 9")]


def test_a_group_keeps_its_newest_messages() -> None:
    state = talk(*(said(f"m{n}", f"n{n}") for n in range(group_talk.KEEP + 5)))

    kept = heard(state)
    assert len(kept) == group_talk.KEEP
    assert kept[0] == ("Bob", "n5")


def test_direct_chats_and_other_plans_are_not_group_talk() -> None:
    alice_jid = "491701111111@s.whatsapp.net"
    alice = MessageReceived(chat=alice_jid, msg_id="a", sender=alice_jid, text="hi")
    debug = ReplyPlanned(chat=GROUP, reply_id="d", purpose="debug", text="[debug]")
    state = talk(alice, said("m1", "hi all"), debug)

    assert list(state.groups) == [GROUP]
    assert heard(state) == [("Bob", "hi all")]  # a debug copy is not the bot speaking there


def test_a_forget_of_the_group_leaves_nothing_and_an_expiry_only_what_it_kept() -> None:
    recs = [Recorded(n, NOW + n, said(f"m{n}", f"n{n}")) for n in (1, 2, 3)]
    listed = [(n, "MessageReceived", GROUP) for n in (1, 2, 3)]
    forget = removed(Selection(chats=frozenset({GROUP})), "forget", listed)
    expiry = removed(Selection(seqs=frozenset({1})), "expiry", [(1, "MessageReceived", GROUP)])
    assert forget is not None
    assert expiry is not None

    assert fold([*recs, Recorded(4, NOW + 4, forget)]).group_talk.groups == {}
    assert heard(fold([*recs, Recorded(4, NOW + 4, expiry)]).group_talk) == [
        ("Bob", "n2"),
        ("Bob", "n3"),
    ]


def _config(mode: str, **groups: Any) -> Any:
    group: dict[str, Any] = {
        "type": "group",
        "jid": GROUP,
        "trigger": {"mode": mode, "keywords": ["bot"]},
    }
    return config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [group],
            "groups": groups,
        }
    )


def test_the_context_goes_to_mention_and_keyword_groups_only() -> None:
    state = talk(*(said(f"m{n}", f"n{n}") for n in range(30)))
    everything = group_talk.since_spoke(state, GROUP, frozenset())
    for mode, expected in (("mention", 20), ("keyword", 20), ("always", 0)):
        config = _config(mode)
        group = config.find_entity(GROUP)
        assert group is not None
        chosen = group_context(config, group, everything)
        assert len(chosen) == expected, mode
        assert not chosen or chosen[-1].text == "n29"  # the newest
    off = _config("mention", context_messages=0)
    assert group_context(off, off.find_entity(GROUP), everything) == []


class _Item:
    """A queue item as the prompt reads it."""

    def __init__(self, text: str, sender: str = CAROL, media: Any = None, **fields: Any) -> None:
        self.message = msgspec.structs.replace(
            said("t", text, sender=sender, name="Carol"), **fields
        )
        self.text = text
        self.media = media
        self.transcript = None
        self.document = None


def test_the_context_is_marked_and_comes_before_the_message_to_answer() -> None:
    config = _config("mention")
    context = group_talk.since_spoke(
        talk(said("m1", "Dinner at 7?"), said("m2", "or 8")), GROUP, frozenset()
    )

    turn = user_turn([_Item("@bot which is better?")], config, context)

    assert turn.content == "\n".join(
        [
            CONTEXT_HEAD,
            "Bob: Dinner at 7?",
            "Bob: or 8",
            "",
            ANSWER_HEAD,
            "Carol: @bot which is better?",
        ]
    )
    assert user_turn([_Item("hi")], config).content == "Carol: hi"


def test_the_context_takes_at_most_half_the_input_and_keeps_the_newest() -> None:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [{"type": "group", "jid": GROUP}],
            "limits": {"max_input_chars": 400},
        }
    )
    context = group_talk.since_spoke(
        talk(*(said(f"m{n}", f"message {n:02d} " + "x" * 40) for n in range(20))),
        GROUP,
        frozenset(),
    )

    text = user_turn([_Item("@bot sum up")], config, context).content

    lines = text.split("\n")[1 : text.split("\n").index("")]
    assert sum(len(line) + 1 for line in lines) <= 200
    assert lines[-1].startswith("Bob: message 19")


def test_the_bot_s_own_reply_echoed_back_is_not_talk() -> None:
    echo = MessageReceived(
        chat=GROUP,
        msg_id="WA1",
        sender="491700000000@s.whatsapp.net",
        text="Echo: ok",
        is_group=True,
        from_me=True,
    )
    owner = msgspec.structs.replace(echo, msg_id="O1", text="I'll drive")
    state = talk(
        spoke("r1"),
        echo,
        MessageSkipped(chat=GROUP, msg_id="WA1", reason="echo"),
        owner,
        MessageSkipped(chat=GROUP, msg_id="O1", reason="takeover"),
        said("m2", "thanks"),
    )

    assert heard(state) == [("491700000000", "I'll drive"), ("Bob", "thanks")]


def test_a_bare_call_asks_what_its_sender_said_last() -> None:
    carol_lid = "201234567890123@lid"
    state = talk(
        said("m1", "old news", sender=CAROL, name="Carol"),
        said("m2", "Dinner at 7?"),
        said("m3", "where is it", sender=carol_lid, name="Carol"),  # her LID, as groups send
        said("m4", "and when?", sender=CAROL, name="Carol"),
        said("m5", "no idea"),
    )
    context = group_talk.since_spoke(state, GROUP, frozenset())
    for mode, call in (("mention", "@491700000000"), ("keyword", "Bot?!")):
        group = _config(mode).find_entity(GROUP)
        assert group is not None
        bare = _Item(call, sender_alt=carol_lid)
        kept, asked = pointed_at(group, [bare], context)
        assert _texts(asked) == ["where is it", "and when?"], mode
        assert _texts(kept) == ["old news", "Dinner at 7?", "no idea"], mode
        # Words of its own, an attachment or a quote: the call asks those.
        quote = Quoted(id="m2", text="Dinner at 7?")
        for own in (
            _Item(f"{call} today?", sender_alt=carol_lid),
            _Item(call, sender_alt=carol_lid, media=object()),
            _Item(call, sender_alt=carol_lid, quoted=quote),
        ):
            assert pointed_at(group, [own], context) == (list(context), []), mode
    # A sender who said nothing since the bot spoke asks nothing more.
    group = _config("mention").find_entity(GROUP)
    assert group is not None
    stranger = _Item("@491700000000", sender="491709999999@s.whatsapp.net")
    assert pointed_at(group, [stranger], context) == (list(context), [])


def _texts(saids: Any) -> list[str]:
    return [h.text for h in saids]


def test_a_call_replying_to_a_message_without_text_asks_about_that_message() -> None:
    """A "@bot" as a reply to Bob's photo, sticker or voice note (a quote WhatsApp
    gives without text) points at that message, not at its sender's earlier words."""
    state = talk(
        said("m1", "see you at 7", sender=CAROL, name="Carol"),
        said("m2", "nice"),
    )
    context = group_talk.since_spoke(state, GROUP, frozenset())
    group = _config("mention").find_entity(GROUP)
    assert group is not None
    photo = Quoted(id="m3", text="", sender=BOB)
    for reply in (
        _Item("@491700000000", quoted=photo, quoted_id="m3"),
        _Item("@491700000000", quoted_id="m3"),
    ):
        assert pointed_at(group, [reply], context) == (list(context), [])


def test_a_bare_call_naming_someone_asks_what_they_said_last() -> None:
    """ "@Bob @bot" from Carol: Bob's question, not Carol's words, nor the owner's (the
    owner is named in every call of a mention group, and may have written there)."""
    owner = "491700000000@s.whatsapp.net"
    state = talk(
        said("m1", "what time is the match?"),
        said("m2", "no idea", sender=CAROL, name="Carol"),
        msgspec.structs.replace(said("m3", "me neither", sender=owner, name="Me"), from_me=True),
    )
    context = group_talk.since_spoke(state, GROUP, frozenset())
    group = _config("mention").find_entity(GROUP)
    assert group is not None
    call = _Item("@491702222222 @491700000000", mentions=[BOB, owner])
    kept, asked = pointed_at(group, [call], context)
    assert (_texts(kept), _texts(asked)) == (["no idea", "me neither"], ["what time is the match?"])
    # Naming someone who said nothing here: the caller's own words, as for a bare call.
    quiet = _Item("@491709999999 @491700000000", mentions=["491709999999@s.whatsapp.net"])
    assert _texts(pointed_at(group, [quiet], context)[1]) == ["no idea"]


def test_a_reaction_in_a_listening_window_asks_nothing_earlier() -> None:
    """ "👍" or "?" alone, heard because the bot just spoke with Carol (a listening
    window), has no words, yet it calls for nothing earlier: it is the message."""
    state = talk(said("m1", "is the pool open?", sender=CAROL, name="Carol"), said("m2", "hm"))
    context = group_talk.since_spoke(state, GROUP, frozenset())
    for mode in ("mention", "keyword"):
        group = _config(mode, listen_after_mention_seconds=60).find_entity(GROUP)
        assert group is not None
        for reaction in ("👍", "?", "👍👍 !!"):
            assert pointed_at(group, [_Item(reaction)], context) == (list(context), []), mode
        # With the call in it, a burst of calls and reactions still asks.
        burst = [_Item("👍"), _Item("@491700000000" if mode == "mention" else "bot")]
        assert _texts(pointed_at(group, burst, context)[1]) == ["is the pool open?"], mode


def test_a_bare_call_knows_its_sender_and_the_named_by_any_of_their_ids() -> None:
    """Carol asked under her LID alone (WhatsApp left out her number) and calls under
    her number; Bob spoke under his number and is named by his LID. An earlier
    message that carried both ids taught the bot that they are the same people."""
    carol_lid, bob_lid = "201234567890123@lid", "209876543210987@lid"
    events: list[AnyEvent] = [
        msgspec.structs.replace(said("t1", "hi", sender=carol_lid), sender_alt=CAROL),
        msgspec.structs.replace(said("t2", "hello", sender=bob_lid), sender_alt=BOB),
        spoke("r1"),
        said("m1", "what time is the match?"),
        said("m2", "where is it?", sender=carol_lid, name="Carol"),
        said("m3", "no idea", sender="491709999999@s.whatsapp.net", name="Dan"),
    ]
    folded = fold([Recorded(n, NOW + n, e) for n, e in enumerate(events, 1)])
    context = group_talk.since_spoke(folded.group_talk, GROUP, frozenset())
    group = _config("mention").find_entity(GROUP)
    assert group is not None
    call = _Item("@491700000000", sender=CAROL)
    named = _Item("@209876543210987 @491700000000", sender=CAROL, mentions=[bob_lid])
    for item, question in ((call, "where is it?"), (named, "what time is the match?")):
        known = aliases.named_by(folded.aliases, [item.message])
        assert _texts(pointed_at(group, [item], context, known)[1]) == [question]


def test_the_question_a_bare_call_asks_goes_whole_while_context_is_cut() -> None:
    question = "Which of these should we book? " + " ".join(f"option {n}" for n in range(300))
    aside = "y" * 3000
    state = talk(said("m1", aside), said("m2", question, sender=CAROL, name="Carol"))
    context = group_talk.since_spoke(state, GROUP, frozenset())
    group = _config("mention").find_entity(GROUP)
    assert group is not None
    call = [_Item("@491700000000")]
    talk_, asked = pointed_at(group, call, context)

    text = user_turn(call, _config("mention"), talk_, asked).content
    assert f"Carol: {question}\nCarol: @491700000000" in text  # 3,220 characters, whole
    assert f"Bob: {aside[:1000]}…\n" in text  # context: cut
    # Longer than the turn may be: cut, with the marker, never left out.
    small = _config("mention", context_messages=5)
    small = msgspec.structs.replace(
        small, limits=msgspec.structs.replace(small.limits, max_input_chars=1000)
    )
    text = user_turn(call, small, talk_, asked).content
    answer = text.split(ANSWER_HEAD + "\n")[1]
    assert answer.startswith(f"Carol: {question[:900]}")
    assert answer.endswith(CUT_MARKER.format(limit=1000))


def test_only_the_newest_messages_keep_their_words_whole() -> None:
    """What a bare call can ask is among a group's newest messages; older ones are
    context, kept cut: a group never holds KEEP whole texts."""
    long = "w" * 5000
    state = talk(*(said(f"m{n}", f"{n} {long}") for n in range(group_talk.KEEP)))

    sizes = [len(text) for _, text in heard(state)]
    assert sizes[-group_talk.WHOLE :] == [len(f"{n} {long}") for n in range(90, 100)]
    assert set(sizes[: -group_talk.WHOLE]) == {1001}


VOICE = Media(kind="voice", mime="audio/ogg", size=9000, sha256="a" * 64, seconds=7)
PHOTO = Media(kind="image", mime="image/jpeg", size=9000, sha256="b" * 64)


def test_a_bare_call_after_a_voice_note_or_a_photo_asks_about_that() -> None:
    """Carol's last message is a voice note (or a photo) without a word: the call is
    about it, never about what she typed before (which stays context)."""
    group = _config("mention").find_entity(GROUP)
    assert group is not None
    vision = _config("mention")
    for media, line in (
        (VOICE, "Carol: [voice note, 7 s, not transcribed]"),
        (PHOTO, "Carol: [image]"),
    ):
        state = talk(
            said("m1", "is the pool open?", sender=CAROL, name="Carol"),
            said("m2", "hm"),
            msgspec.structs.replace(said("m3", "", sender=CAROL, name="Carol"), media=media),
        )
        context = group_talk.since_spoke(state, GROUP, frozenset())
        kept, asked = pointed_at(group, [_Item("@491700000000")], context)
        assert asked == [context[-1]], media.kind

        turn = user_turn([_Item("@491700000000")], vision, kept, asked)
        answer = turn.content.split(ANSWER_HEAD + "\n")[1]
        assert answer == f"{line}\nCarol: @491700000000", media.kind
        assert "Carol: is the pool open?" in turn.content.split(ANSWER_HEAD)[0]
        assert [i.sha256 for i in turn.images] == ([PHOTO.sha256] if media is PHOTO else [])


def test_what_group_talk_learns_of_an_attachment_later_goes_with_it() -> None:
    """The voice note's transcript, the photo fetched after it was recorded; in the
    context an attachment is a note, never an image sent along."""
    fetching = msgspec.structs.replace(PHOTO, sha256="", fetching=True)
    state = talk(
        msgspec.structs.replace(said("v", "", sender=CAROL, name="Carol"), media=VOICE),
        msgspec.structs.replace(said("p", "look"), media=fetching),
        MediaTranscribed(chat=GROUP, msg_id="v", text="is the pool open?", model="w"),
        MediaFetched(chat=GROUP, msg_id="p", media=PHOTO),
    )
    context = group_talk.since_spoke(state, GROUP, frozenset())
    turn = user_turn([_Item("@491700000000 yes?")], _config("mention"), context)

    assert turn.content.split("\n")[1:3] == [
        "Carol: [voice note, 7 s, automatic transcript] is the pool open?",
        "Bob: [image, not shown to you] look",
    ]
    assert turn.images == ()
