"""The wrappers around a WhatsApp message, opened.

whatsmeow unwraps the wrappers it knows (device-sent, bot-invoke, ephemeral,
view-once, lottie sticker, document-with-caption, edited; its ``UnwrapRaw``)
before neonize hands the message over. Newer ``FutureProofMessage`` wrappers
it leaves wrapped: each photo of an album (``associatedChildMessage``),
spoilers, group mentions, questions, messages forwarded from an AI, polls v4,
a poll option's or an event's image, audio stickers. ``unwrap`` opens all of
them, whatsmeow's too (they can sit inside the new ones), at most
``MAX_WRAPPERS`` deep; protobuf's own parser refuses a message nested much
deeper (upb stops at about 50 wrappers) before it gets here.

The other ``FutureProofMessage`` fields (status posts and mentions, settings,
bot tasks, newsletter notices) wrap nothing to answer: the conversion drops
them with their reason. A test checks that every ``FutureProofMessage`` field
of the installed neonize is one or the other.
"""

from __future__ import annotations

from typing import Any

# Message fields whose value wraps the real message in ``.message``.
WRAPPERS = frozenset(
    {
        # whatsmeow's UnwrapRaw opens these at the top only
        "deviceSentMessage",
        "botInvokeMessage",
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "lottieStickerMessage",
        "documentWithCaptionMessage",
        "editedMessage",
        # left wrapped by whatsmeow
        "associatedChildMessage",
        "spoilerMessage",
        "groupMentionedMessage",
        "botForwardedMessage",
        "questionMessage",
        "questionReplyMessage",
        "pollCreationMessageV4",
        "pollCreationOptionImageMessage",
        "eventCoverImage",
        "audioStickerMessage",
    }
)
# The other ``FutureProofMessage`` fields wrap nothing to answer: settings, bot
# tasks, newsletter notices (status posts and mentions have their own drop reason).
INERT = frozenset(
    {
        "limitSharingMessage",
        "acp2SettingMessage",
        "botTaskMessage",
        "botPlatformRegistrationSuccessMessage",
        "newsletterAdminProfileMessage",
        "newsletterAdminProfileStatusMessage",
        "newsletterScheduledMessage",
    }
)
# Far beyond any real nesting (two or three); past it a message is dropped.
MAX_WRAPPERS = 8


def unwrap(message: Any) -> list[Any] | None:
    """The message and what it wraps, outermost first; None: wrapped too deeply."""
    chain = [message]
    for _ in range(MAX_WRAPPERS + 1):
        inner = _wrapped(chain[-1])
        if inner is None:
            return chain
        chain.append(inner)
    return None


def _wrapped(message: Any) -> Any | None:
    for field, value in message.ListFields():
        if field.name in WRAPPERS and value.HasField("message"):
            return value.message
    return None


def innermost(message: Any) -> Any:
    """What ``message`` wraps; itself when nothing does, or when wrapped too deeply."""
    chain = unwrap(message)
    if chain is None:
        return message
    return chain[-1]
