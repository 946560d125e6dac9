"""Every inbound shape of the README's table, as WhatsApp sends it: real neonize events.

``SHAPES`` maps each row of the table (its first column, exactly) to cases;
a case is the events of one scenario, in order (an encrypted edit needs its
original first), and what the last one's ``inbound`` line must show besides
the table's outcome. Each event is a ``MessageEv`` from ``message_ev`` (every
required field set, serialised in full) or an ``UndecryptableMessageEv``.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import os
from collections.abc import Callable
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from neonize.proto.Neonize_pb2 import UndecryptableMessage
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from pipeline.transport.neonize._secret import edit_key
from tests.neonize_fakes import ALICE, GROUP, LID, OWNER, OWNER_LID, message_ev

ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
OWNER_JID = f"{OWNER}@s.whatsapp.net"
STRANGER_JID = "491709999999@s.whatsapp.net"
BOB_JID = "491702222222@s.whatsapp.net"
BOB_LID = "555555555555555@lid"
WEEK = 604_800
# Meta AI, as whatsmeow names it (types.MetaAIJID, types.NewMetaAIJID).
META_AI = "13135550002@s.whatsapp.net"
META_AI_BOT = "867051314767696@bot"
LIST = "1764070000@broadcast"
LIST_ROW = (
    "a contact's message to a broadcast list you are on (`…@broadcast`, not `status@broadcast`)"
)
BOT_ROW = "a bot's message: Meta AI answering `@Meta AI` in a chat (`…@bot`, `13135550002`)"
Line = dict[str, Any]
Check = Callable[[Line], None]

MEDIA_KEYS: dict[str, Any] = {
    "URL": "https://mmg.whatsapp.net/v/t62.7118-24/19.enc?ccb=11-4",
    "directPath": "/v/t62.7118-24/19.enc?ccb=11-4",
    "mediaKey": b"k" * 32,
    "fileSHA256": b"s" * 32,
    "fileEncSHA256": b"e" * 32,
    "mediaKeyTimestamp": 1_764_069_990,
}
VCARD_JANE = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nFN:Jane Doe\r\n"
    "item1.TEL;waid=491701234567:+49 170 1234567\r\nitem1.X-ABLabel:Mobile\r\nEND:VCARD"
)
VCARD_MAX = (
    "BEGIN:VCARD\nVERSION:3.0\nN:Roe;Max;;;\nFN:Max Roe\n"
    "TEL;type=CELL;type=VOICE;waid=436607654321:+43 660 7654321\nEND:VCARD"
)


class Case(NamedTuple):
    events: tuple[Any, ...]
    check: Check | None = None
    undecryptable: bool = False


def context(**fields: Any) -> Any:
    """A ContextInfo as a current phone fills it in a chat with a 7-day timer."""
    return wa.ContextInfo(expiration=WEEK, ephemeralSettingTimestamp=1_764_000_000, **fields)


def image(caption: str = "") -> Any:
    return wa.ImageMessage(
        mimetype="image/jpeg",
        caption=caption,
        fileLength=48_213,
        height=1280,
        width=960,
        JPEGThumbnail=b"\xff\xd8thumb",
        contextInfo=context(),
        **MEDIA_KEYS,
    )


def video(**fields: Any) -> Any:
    return wa.VideoMessage(
        mimetype="video/mp4",
        fileLength=912_000,
        seconds=12,
        height=640,
        width=360,
        contextInfo=context(),
        **MEDIA_KEYS,
        **fields,
    )


def sticker() -> Any:
    return wa.StickerMessage(
        mimetype="image/webp",
        fileLength=20_480,
        height=512,
        width=512,
        isAnimated=True,
        **MEDIA_KEYS,
    )


def document(caption: str = "") -> Any:
    return wa.DocumentMessage(
        mimetype="application/pdf",
        title="contract.pdf",
        fileName="contract.pdf",
        fileLength=80_000,
        pageCount=3,
        caption=caption,
        contextInfo=context(),
        **MEDIA_KEYS,
    )


def text(words: str, **fields: Any) -> Any:
    return wa.Message(
        extendedTextMessage=wa.ExtendedTextMessage(text=words, contextInfo=context(**fields))
    )


def wrapped(field: str, inner: Any) -> Any:
    """``inner`` in a ``FutureProofMessage`` (or, for device-sent, a ``DeviceSentMessage``)."""
    if field == "deviceSentMessage":
        return wa.Message(
            deviceSentMessage=wa.DeviceSentMessage(destinationJID=ALICE_JID, message=inner)
        )
    return wa.Message(**{field: wa.FutureProofMessage(message=inner)})


def child(inner: Any, index: int) -> Any:
    """A photo of an album: its link to the album header rides on the wrapper."""
    association = wa.MessageAssociation(
        associationType=wa.MessageAssociation.MEDIA_ALBUM,
        parentMessageKey=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID="3EB0ALBUM"),
        messageIndex=index,
    )
    message = wrapped("associatedChildMessage", inner)
    message.messageContextInfo.CopyFrom(
        wa.MessageContextInfo(messageSecret=os.urandom(32), messageAssociation=association)
    )
    return message


def location(**extra: Any) -> Any:
    return wa.LocationMessage(
        degreesLatitude=52.516275,
        degreesLongitude=13.377704,
        name="Brandenburger Tor",
        address="Pariser Platz, 10117 Berlin",
        JPEGThumbnail=b"\xff\xd8map",
        contextInfo=context(),
        **extra,
    )


def poll(**fields: Any) -> Any:
    options = [wa.PollCreationMessage.Option(optionName=n) for n in ("Monday", "Friday")]
    fields.setdefault("selectableOptionsCount", 1)
    return wa.PollCreationMessage(
        encKey=b"p" * 32, name="Which day?", options=options, contextInfo=context(), **fields
    )


def event() -> Any:
    return wa.EventMessage(
        name="Summer party",
        description="Bring something to grill",
        location=wa.LocationMessage(name="Tempelhofer Feld"),
        startTime=1_783_188_000,
        endTime=1_783_206_000,
        joinLink="https://call.whatsapp.com/video/abc",
        extraGuestsAllowed=True,
        contextInfo=context(),
    )


def protocol(kind: int, **fields: Any) -> Any:
    return wa.Message(protocolMessage=wa.ProtocolMessage(type=kind, **fields))


def edit_of(original: str, words: str) -> Any:
    return protocol(
        wa.ProtocolMessage.MESSAGE_EDIT,
        key=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID=original),
        editedMessage=wa.Message(conversation=words),
        timestampMS=1_764_070_010_000,
    )


def secret_edit(secret: bytes, original: str, words: str) -> Any:
    """An edit as a current phone sends it: AES-GCM under the original's message secret."""
    plain = edit_of(original, words).SerializeToString()
    iv = os.urandom(12)
    payload = AESGCM(edit_key(secret, original, ALICE_JID, ALICE_JID)).encrypt(iv, plain, None)
    return wa.Message(
        secretEncryptedMessage=wa.SecretEncryptedMessage(
            targetMessageKey=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID=original),
            encPayload=payload,
            encIV=iv,
            secretEncType=wa.SecretEncryptedMessage.MESSAGE_EDIT,
        )
    )


def secret_other(kind: int) -> Any:
    return wa.Message(
        secretEncryptedMessage=wa.SecretEncryptedMessage(
            targetMessageKey=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID="3EB0POLL"),
            encPayload=os.urandom(40),
            encIV=os.urandom(12),
            secretEncType=kind,
        )
    )


def undecryptable(
    *, unavailable: bool, hide: bool = False, chat: str = ALICE_JID, **source: Any
) -> Any:
    """An ``UndecryptableMessageEv`` as neonize 0.5.2 encodes whatsmeow's event;
    ``source``: ``message_ev``'s other fields (the sender, ...)."""
    info = message_ev(wa.Message(conversation="x"), chat=chat, **source).Info
    info.Type = "media"
    mode = (
        UndecryptableMessage.DECRYPT_FAIL_HIDE if hide else UndecryptableMessage.DECRYPT_FAIL_SHOW
    )
    ev = UndecryptableMessage(Info=info, IsUnavailable=unavailable, DecryptFailMode=mode)
    ev.SerializeToString()  # every required field set
    return ev


def ev(message: Any, **fields: Any) -> Any:
    return message_ev(message, **fields)


def has(**expected: Any) -> Check:
    def check(line: Line) -> None:
        assert {k: line.get(k) for k in expected} == expected, line

    return check


def says(words: str, **expected: Any) -> Check:
    return has(text=words, **expected)


def _secret_case(readable: bool) -> Case:
    secret = os.urandom(32)
    original = ev(
        wa.Message(
            conversation="teh plan",
            messageContextInfo=wa.MessageContextInfo(messageSecret=secret),
        ),
        msg_id="3EB0SECRET",
    )
    key = secret if readable else os.urandom(32)
    edit = ev(secret_edit(key, "3EB0SECRET", "the plan"), msg_id="3EB0SECRETEDIT")
    words = "the plan" if readable else None
    return Case((original, edit), has(id="3EB0SECRET", text=words, edit_id="3EB0SECRETEDIT"))


def _shapes() -> dict[str, list[Case]]:
    album_media = {"kind": "image", "mime": "image/jpeg", "size": 48_213}
    return {
        "text (`conversation`, `extendedTextMessage`)": [
            Case((ev(wa.Message(conversation="Where is Lisbon?")),), says("Where is Lisbon?")),
            Case((ev(text("And Porto?")),), says("And Porto?", expiration=WEEK)),
        ],
        "a text message with no text (a bare link preview)": [
            Case(
                (
                    ev(
                        wa.Message(
                            extendedTextMessage=wa.ExtendedTextMessage(
                                matchedText="https://example.org", title="Example"
                            )
                        )
                    ),
                )
            ),
            Case((ev(wa.Message(conversation="")),)),
        ],
        "a voice note or audio message (`audioMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            audioMessage=wa.AudioMessage(
                                mimetype="audio/ogg; codecs=opus",
                                fileLength=9_000,
                                seconds=7,
                                PTT=True,
                                waveform=b"\x00\x10",
                                **MEDIA_KEYS,
                            )
                        )
                    ),
                ),
                has(
                    media={
                        "kind": "voice",
                        "mime": "audio/ogg; codecs=opus",
                        "size": 9_000,
                        "seconds": 7.0,
                    }
                ),
            )
        ],
        "an image (`imageMessage`), with or without a caption": [
            Case((ev(wa.Message(imageMessage=image("our trip"))),), says("our trip")),
            Case((ev(wa.Message(imageMessage=image())),), says("")),
        ],
        "a document (`documentMessage`, `documentWithCaptionMessage`) with or without a caption": [
            Case((ev(wa.Message(documentMessage=document())),), says("")),
            Case(
                (
                    ev(
                        wrapped(
                            "documentWithCaptionMessage",
                            wa.Message(documentMessage=document("the contract")),
                        )
                    ),
                ),
                says("the contract"),
            ),
        ],
        "a video (`videoMessage`)": [
            Case((ev(wa.Message(videoMessage=video(caption="look"))),), says("look"))
        ],
        "a round video note (`ptvMessage`)": [
            Case(
                (ev(wa.Message(ptvMessage=video())),),
                lambda line: _media_problem(line, "unsupported"),
            )
        ],
        "a sticker (`stickerMessage`, animated `lottieStickerMessage`, `audioStickerMessage`)": [
            Case((ev(wa.Message(stickerMessage=sticker())),)),
            Case((ev(wrapped("lottieStickerMessage", wa.Message(stickerMessage=sticker()))),)),
            Case((ev(wrapped("audioStickerMessage", wa.Message(stickerMessage=sticker()))),)),
        ],
        "a photo of an album (`associatedChildMessage`; each is a message of its own)": [
            Case(
                (ev(child(wa.Message(imageMessage=image("first")), 1), msg_id="3EB0ALB1"),),
                has(text="first", media=album_media, expiration=WEEK),
            ),
            Case((ev(child(wa.Message(imageMessage=image()), 2), msg_id="3EB0ALB2"),), says("")),
        ],
        "an album's header (`albumMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            albumMessage=wa.AlbumMessage(
                                expectedImageCount=3, contextInfo=context()
                            )
                        )
                    ),
                )
            )
        ],
        "a spoiler (`spoilerMessage`), a group mention (`groupMentionedMessage`), a question and"
        " its reply (`questionMessage`, `questionReplyMessage`), a message forwarded from an AI"
        " (`botForwardedMessage`), a message to an AI (`botInvokeMessage`)": [
            Case((ev(wrapped(field, text(f"inside {field}"))),), says(f"inside {field}"))
            for field in (
                "spoilerMessage",
                "groupMentionedMessage",
                "questionMessage",
                "questionReplyMessage",
                "botForwardedMessage",
                "botInvokeMessage",
            )
        ],
        "a location pin (`locationMessage`)": [
            Case(
                (ev(wa.Message(locationMessage=location(comment="meet here"))),),
                says(
                    "[location: Brandenburger Tor, Pariser Platz, 10117 Berlin; "
                    "52.516275, 13.377704] meet here",
                    kind="other",
                    expiration=WEEK,
                ),
            )
        ],
        "a live location (`liveLocationMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            liveLocationMessage=wa.LiveLocationMessage(
                                degreesLatitude=48.137154,
                                degreesLongitude=11.576124,
                                accuracyInMeters=12,
                                caption="on my way",
                                sequenceNumber=1,
                                contextInfo=context(),
                            )
                        )
                    ),
                ),
                says("[live location: 48.137154, 11.576124] on my way"),
            )
        ],
        "a contact card (`contactMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            contactMessage=wa.ContactMessage(
                                displayName="Jane", vcard=VCARD_JANE, contextInfo=context()
                            )
                        )
                    ),
                ),
                says("[contact card: Jane Doe, +49 170 1234567]"),
            )
        ],
        "several contact cards (`contactsArrayMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            contactsArrayMessage=wa.ContactsArrayMessage(
                                displayName="2 contacts",
                                contextInfo=context(),
                                contacts=[
                                    wa.ContactMessage(displayName="Jane", vcard=VCARD_JANE),
                                    wa.ContactMessage(displayName="Max", vcard=VCARD_MAX),
                                ],
                            )
                        )
                    ),
                ),
                says("[2 contact cards: Jane Doe, +49 170 1234567; Max Roe, +43 660 7654321]"),
            )
        ],
        "a poll or quiz, v1 to v6 (`pollCreationMessage`, `pollCreationMessageV2`,"
        " `pollCreationMessageV3`, `pollCreationMessageV4`, `pollCreationMessageV5`,"
        " `pollCreationMessageV6`)": [
            *(
                Case(
                    (ev(wa.Message(**{field: poll()})),),
                    says("[poll: Which day?; options: Monday / Friday; one choice]"),
                )
                for field in (
                    "pollCreationMessage",
                    "pollCreationMessageV2",
                    "pollCreationMessageV3",
                    "pollCreationMessageV5",
                )
            ),
            Case(
                (ev(wrapped("pollCreationMessageV4", wa.Message(pollCreationMessage=poll()))),),
                says("[poll: Which day?; options: Monday / Friday; one choice]"),
            ),
            Case(
                (
                    ev(
                        wa.Message(
                            pollCreationMessageV6=poll(
                                pollType=wa.QUIZ,
                                correctAnswer=wa.PollCreationMessage.Option(optionName="Friday"),
                                selectableOptionsCount=0,
                            )
                        )
                    ),
                ),
                says("[quiz: Which day?; options: Monday / Friday; any number of choices]"),
            ),
        ],
        "a picture of a poll option or of an event (`pollCreationOptionImageMessage`,"
        " `eventCoverImage`)": [
            Case((ev(wrapped(field, wa.Message(imageMessage=image()))),), says(""))
            for field in ("pollCreationOptionImageMessage", "eventCoverImage")
        ],
        "an event (`eventMessage`)": [
            Case(
                (ev(wa.Message(eventMessage=event())),),
                says(
                    "[event: Summer party; 2026-07-04 18:00 to 23:00 UTC; at Tempelhofer Feld]"
                    " Bring something to grill"
                ),
            )
        ],
        "an event invitation (`eventInviteMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            eventInviteMessage=wa.EventInviteMessage(
                                eventID="3EB0EVENT",
                                eventTitle="Summer party",
                                startTime=1_783_188_000,
                                caption="you're invited",
                                contextInfo=context(),
                            )
                        )
                    ),
                ),
                says("[event invitation: Summer party; 2026-07-04 18:00 UTC] you're invited"),
            )
        ],
        "view-once media": [
            Case((undecryptable(unavailable=True),), _undecryptable_check, undecryptable=True)
        ],
        "a message that cannot be decrypted": [
            Case((undecryptable(unavailable=False),), _undecryptable_check, undecryptable=True),
            Case(
                (undecryptable(unavailable=False, hide=True, chat=GROUP),),
                has(is_group=True),
                undecryptable=True,
            ),
        ],
        "view-once media that does arrive decrypted (`viewOnceMessage`, `viewOnceMessageV2`,"
        " `viewOnceMessageV2Extension`)": [
            # whatsmeow unwraps these itself and says so; nested ones are opened here too
            Case((ev(wa.Message(imageMessage=image("once")), view_once=True),), says("once")),
            *(
                Case((ev(wrapped(field, wa.Message(imageMessage=image("once")))),), says("once"))
                for field in ("viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension")
            ),
        ],
        "a message in a chat with disappearing messages (`ephemeralMessage`,"
        " `contextInfo.expiration`)": [
            Case((ev(text("vanishing"), ephemeral=True),), has(expiration=WEEK)),
            Case((ev(wrapped("ephemeralMessage", text("nested"))),), has(expiration=WEEK)),
            # A plain conversation cannot carry the timer: unknown, not off.
            Case((ev(wa.Message(conversation="old app"), ephemeral=True),), has(expiration=None)),
            Case(
                (
                    ev(
                        wa.Message(
                            extendedTextMessage=wa.ExtendedTextMessage(
                                text="timer off", contextInfo=wa.ContextInfo(expiration=0)
                            )
                        )
                    ),
                ),
                has(expiration=0),
            ),
        ],
        "a DM by `…@lid` (phone JID as alternate)": [
            Case(
                (ev(text("hallo"), chat=ALICE_LID, sender_alt=f"{ALICE}:3@s.whatsapp.net"),),
                has(chat=ALICE_LID, sender=ALICE_LID, sender_alt=ALICE_JID, chat_alt=ALICE_JID),
            )
        ],
        "a DM by `…@lid` without the phone number": [
            Case(
                (ev(text("hallo"), chat=ALICE_LID),),
                has(chat=ALICE_LID, sender=ALICE_LID, sender_alt=None, chat_alt=None),
            )
        ],
        "your own message in a contact's chat, typed on the phone (`deviceSentMessage`)": [
            Case(
                (
                    ev(
                        wrapped("deviceSentMessage", text("I'll take this")),
                        chat=ALICE_LID,
                        sender=f"{OWNER_LID}:2@lid",
                        recipient_alt=ALICE_JID,
                        from_me=True,
                    ),
                ),
                has(from_me=True, chat_alt=ALICE_JID, sender=f"{OWNER_LID}@lid"),
            )
        ],
        "note to self, by phone JID or by your LID": [
            Case(
                (
                    ev(
                        text("remember the milk"),
                        chat=f"{OWNER_LID}@lid",
                        sender=f"{OWNER_LID}:2@lid",
                        recipient_alt=OWNER_JID,
                        from_me=True,
                    ),
                ),
                has(chat=f"{OWNER_LID}@lid", chat_alt=OWNER_JID, from_me=True),
            ),
            Case(
                (
                    ev(
                        text("milk"),
                        chat=OWNER_JID,
                        sender=f"{OWNER}:2@s.whatsapp.net",
                        from_me=True,
                    ),
                ),
                has(chat=OWNER_JID, from_me=True),
            ),
        ],
        "a group message mentioning you by number or by LID, or with a keyword": [
            Case(
                (
                    ev(
                        text(f"@{OWNER_LID} thoughts?", mentionedJID=[f"{OWNER_LID}@lid"]),
                        chat=GROUP,
                        sender=f"{LID}:7@lid",
                        sender_alt="491702222222:7@s.whatsapp.net",
                    ),
                ),
                has(is_group=True, chat_alt=None, mentions=[f"{OWNER_LID}@lid"]),
            )
        ],
        "a reply quoting a message": [
            Case(
                (
                    ev(
                        text(
                            "yes, that one",
                            stanzaID="3EB0Q",
                            participant=ALICE_LID,
                            quotedMessage=wrapped(
                                "spoilerMessage", wa.Message(conversation="the plan")
                            ),
                        )
                    ),
                ),
                has(quoted={"id": "3EB0Q", "text": "the plan", "sender": ALICE_LID}),
            )
        ],
        "an edit (`protocolMessage` `MESSAGE_EDIT`, `editedMessage`)": [
            Case(
                (ev(edit_of("3EB0ORIG", "the corrected text"), msg_id="3EB0E", edit="1"),),
                has(id="3EB0ORIG", text="the corrected text", edit_id="3EB0E"),
            ),
            Case(
                (ev(wrapped("editedMessage", edit_of("3EB0ORIG", "again")), msg_id="3EB0E2"),),
                has(id="3EB0ORIG", text="again"),
            ),
            # Of Alice's message to a broadcast list: in her chat, where that message is.
            Case(
                (
                    ev(
                        edit_of("3EB0ORIG", "to all, corrected"),
                        chat=LIST,
                        sender=f"{ALICE}:3@s.whatsapp.net",
                        is_group=True,
                        msg_id="3EB0E3",
                        edit="1",
                    ),
                ),
                has(chat=ALICE_JID, id="3EB0ORIG", text="to all, corrected"),
            ),
        ],
        "an edit of someone else's message (a modified client's key names it)": [
            # Bob's client names Alice's message; the line says Bob sent the edit.
            Case(
                (
                    ev(
                        protocol(
                            wa.ProtocolMessage.MESSAGE_EDIT,
                            key=MessageKey(
                                remoteJID=GROUP, fromMe=False, ID="3EB0ALICE", participant=ALICE_LID
                            ),
                            editedMessage=wa.Message(conversation="transfer it to Bob"),
                        ),
                        chat=GROUP,
                        sender=f"{BOB_LID.replace('@', ':1@')}",
                        sender_alt=BOB_JID,
                        push_name="Bob",
                        msg_id="3EB0FORGED",
                        edit="1",
                    ),
                ),
                has(id="3EB0ALICE", sender=BOB_LID, sender_alt=BOB_JID, from_me=False),
            )
        ],
        "an edit encrypted with the message's secret, as phones now send it"
        " (`secretEncryptedMessage` `MESSAGE_EDIT`)": [_secret_case(readable=True)],
        "an edit the bot cannot read (original never seen, over 30 minutes old,"
        " or its payload is no edit)": [_secret_case(readable=False)],
        "a deletion for everyone (`protocolMessage` `REVOKE`)": [
            Case(
                (
                    ev(
                        protocol(
                            wa.ProtocolMessage.REVOKE,
                            key=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID="3EB0GONE"),
                        ),
                        edit="7",
                    ),
                ),
                has(id="3EB0GONE"),
            ),
            Case(
                (
                    ev(
                        protocol(
                            wa.ProtocolMessage.REVOKE,
                            key=MessageKey(remoteJID=LIST, fromMe=False, ID="3EB0GONE"),
                        ),
                        chat=LIST,
                        sender=f"{LID}:3@lid",
                        sender_alt=f"{ALICE}:3@s.whatsapp.net",
                        is_group=True,
                        edit="7",
                    ),
                ),
                has(chat=ALICE_LID, id="3EB0GONE"),
            ),
        ],
        "a reaction (`reactionMessage`, `encReactionMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            reactionMessage=wa.ReactionMessage(
                                key=MessageKey(ID="3EB0AA"), text="👍", senderTimestampMS=1
                            )
                        )
                    ),
                )
            ),
            Case(
                (
                    ev(
                        wa.Message(
                            encReactionMessage=wa.EncReactionMessage(
                                targetMessageKey=MessageKey(ID="3EB0AA"),
                                encPayload=b"x",
                                encIV=b"y",
                            )
                        )
                    ),
                )
            ),
        ],
        "a poll vote (`pollUpdateMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            pollUpdateMessage=wa.PollUpdateMessage(
                                pollCreationMessageKey=MessageKey(ID="3EB0POLL"),
                                vote=wa.PollEncValue(encPayload=b"x", encIV=b"y"),
                            )
                        )
                    ),
                )
            )
        ],
        "an answer to an event (`encEventResponseMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            encEventResponseMessage=wa.EncEventResponseMessage(
                                eventCreationMessageKey=MessageKey(ID="3EB0EV"),
                                encPayload=b"x",
                                encIV=b"y",
                            )
                        )
                    ),
                )
            )
        ],
        "a pinned message (`pinInChatMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            pinInChatMessage=wa.PinInChatMessage(
                                key=MessageKey(ID="3EB0AA"), type=wa.PinInChatMessage.PIN_FOR_ALL
                            )
                        )
                    ),
                )
            )
        ],
        "a message kept in a disappearing chat (`keepInChatMessage`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            keepInChatMessage=wa.KeepInChatMessage(
                                key=MessageKey(ID="3EB0AA"), keepType=1
                            )
                        )
                    ),
                )
            )
        ],
        "an encryption key share (`senderKeyDistributionMessage`,"
        " `fastRatchetKeySenderKeyDistributionMessage` alone, `protocolMessage`"
        " `APP_STATE_SYNC_KEY_SHARE`)": [
            Case(
                (
                    ev(
                        wa.Message(
                            senderKeyDistributionMessage=wa.SenderKeyDistributionMessage(
                                groupID=GROUP, axolotlSenderKeyDistributionMessage=b"k"
                            )
                        ),
                        chat=GROUP,
                    ),
                )
            ),
            Case(
                (
                    ev(
                        wa.Message(
                            fastRatchetKeySenderKeyDistributionMessage=wa.SenderKeyDistributionMessage(
                                groupID=GROUP
                            )
                        ),
                        chat=GROUP,
                    ),
                )
            ),
            Case((ev(protocol(wa.ProtocolMessage.APP_STATE_SYNC_KEY_SHARE)),)),
        ],
        "a history sync (`protocolMessage` `HISTORY_SYNC_NOTIFICATION`)": [
            Case((ev(protocol(wa.ProtocolMessage.HISTORY_SYNC_NOTIFICATION)),))
        ],
        "the chat's disappearing timer set or switched off"
        " (`protocolMessage` `EPHEMERAL_SETTING`)": [
            Case(
                (ev(protocol(wa.ProtocolMessage.EPHEMERAL_SETTING, ephemeralExpiration=seconds)),),
                has(chat=ALICE_JID, expiration=seconds),
            )
            for seconds in (86_400, 0)
        ],
        "any other protocol message": [
            Case((ev(protocol(wa.ProtocolMessage.PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE)),))
        ],
        "a poll or event edited, an option added to a poll (`secretEncryptedMessage`"
        " `POLL_EDIT`, `EVENT_EDIT`, `POLL_ADD_OPTION`)": [
            Case((ev(secret_other(kind)),))
            for kind in (
                wa.SecretEncryptedMessage.POLL_EDIT,
                wa.SecretEncryptedMessage.EVENT_EDIT,
                wa.SecretEncryptedMessage.POLL_ADD_OPTION,
            )
        ],
        "a status mention or group status (`statusMentionMessage`, `groupStatusMentionMessage`,"
        " `groupStatusMessage`, `groupStatusMessageV2`, `statusAddYours`)": [
            Case((ev(wrapped(field, wa.Message(imageMessage=image("my day")))),))
            for field in (
                "statusMentionMessage",
                "groupStatusMentionMessage",
                "groupStatusMessage",
                "groupStatusMessageV2",
                "statusAddYours",
            )
        ],
        "a status post (`status@broadcast`)": [
            Case(
                (
                    ev(
                        text("my holiday"),
                        chat="status@broadcast",
                        sender=f"{LID}:3@lid",
                        sender_alt=ALICE_JID,
                        is_group=True,
                    ),
                )
            )
        ],
        LIST_ROW: [
            # whatsmeow: the list as Chat, IsGroup true, Alice in Sender, SenderAlt often empty.
            Case(
                (ev(text("to all"), chat=LIST, sender=sender, sender_alt=alt, is_group=True),),
                has(chat=chat, sender=chat, chat_alt=chat_alt, is_group=False, expiration=None),
            )
            for sender, alt, chat, chat_alt in (
                (f"{ALICE}:3@s.whatsapp.net", "", ALICE_JID, None),
                (f"{LID}:3@lid", f"{ALICE}:3@s.whatsapp.net", ALICE_LID, ALICE_JID),
                (f"{LID}:3@lid", "", ALICE_LID, None),  # the transport asks the LID store
            )
        ],
        "your own post to a broadcast list": [
            Case(
                (
                    ev(
                        text("to all of you"),
                        chat=LIST,
                        sender=f"{OWNER}:12@s.whatsapp.net",
                        from_me=True,
                        is_group=True,
                    ),
                )
            )
        ],
        "a newsletter (channel) post": [
            Case((ev(text("news"), chat="120363999999999999@newsletter"),))
        ],
        BOT_ROW: [
            # whatsmeow files it under the chat it answers in, IsGroup unset even in a group.
            Case((ev(text("Lisbon: 21 °C"), chat=ALICE_LID, sender=META_AI, push_name="Meta AI"),)),
            Case((ev(text("Sunny"), chat=GROUP, sender=META_AI_BOT, is_group=False),)),
        ],
        "anything else (buttons, templates, payments, calls, group invitations, …)": [
            Case(
                (
                    ev(
                        wa.Message(
                            groupInviteMessage=wa.GroupInviteMessage(
                                groupJID=GROUP,
                                inviteCode="abc",
                                groupName="Hiking",
                                caption="join us",
                            )
                        )
                    ),
                ),
                has(reason="unsupported: groupInviteMessage"),
            ),
            Case((ev(wa.Message(call=wa.Call(callKey=b"c"))),)),
        ],
        "a message whose chat or sender is no WhatsApp id": [
            Case((ev(text("hi"), chat="someone@example.com"),)),
            Case((ev(text("hi"), sender="not a jid@s.whatsapp.net"),)),
        ],
        "a message wrapped more than 8 wrappers deep": [Case((ev(_nested(9)),))],
        "a chat not in `monitored_entities`": [
            Case((ev(text("hello?"), chat=STRANGER_JID),), has(chat=STRANGER_JID))
        ],
        "an attachment over `media.max_mb`, or one that fails to download": [
            Case(
                (ev(wa.Message(documentMessage=document())),),
                has(
                    media={
                        "kind": "document",
                        "mime": "application/pdf",
                        "size": 80_000,
                        "file_name": "contract.pdf",
                    }
                ),
            )
        ],
    }


def _media_problem(line: Line, problem: str) -> None:
    assert line["media"]["problem"] == problem, line


def _undecryptable_check(line: Line) -> None:
    assert (line["chat"], line["sender"], line["id"]) == (ALICE_JID, ALICE_JID, "3EB0AA"), line
    assert line["timestamp"] == 1_764_070_000.123
    assert "text" not in line
    assert line["detail"]


def _nested(depth: int) -> Any:
    message = wa.Message(conversation="deep")
    for _ in range(depth):
        message = wrapped("spoilerMessage", message)
    return message


def nested_event(depth: int) -> bytes:
    """A message event whose message nests ``depth`` spoiler wrappers: bytes, since
    protobuf will neither build nor parse such a thing (upb stops near 50)."""
    inner: bytes = wa.Message(conversation="deep").SerializeToString()
    for _ in range(depth):
        wrapper = b"\x0a" + _varint(len(inner)) + inner  # FutureProofMessage.message = 1
        inner = _varint(118 << 3 | 2) + _varint(len(wrapper)) + wrapper  # spoilerMessage = 118
    head: bytes = message_ev(wa.Message()).SerializeToString()
    return head + b"\x12" + _varint(len(inner)) + inner  # neonize Message.Message = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


SHAPES = _shapes()
