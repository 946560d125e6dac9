"""Attachments: stored by content under ``STORE/media/``, recognised, read for the model.

``MediaStore`` keeps the bytes (streamed in from a ``MediaSource`` the
transport hands over, one private file per content) and sweeps away the files
no event refers to; ``_formats`` says what a file is from its type, name and
first bytes; ``read_document`` takes the text out of PDFs and text files
(``read_apart``: a PDF in a child process, killed at a deadline); ``opus_info``
reads a spoken reply's length and waveform from its Ogg pages.
Shared by the daemon (intake, agent), the LLM client (images) and the tools
(replay reads, compaction deletes).
"""

from pipeline.media._apart import DEADLINE_SECONDS, read_apart
from pipeline.media._documents import DocumentText, Unreadable, read_document
from pipeline.media._formats import (
    VISION_TYPES,
    DocumentType,
    audio_file_name,
    base_mime,
    document_type,
    guess_mime,
    message_kind,
    sniff_image,
)
from pipeline.media._ogg import OGG_OPUS, NotOpus, OpusInfo, opus_info, whole_seconds
from pipeline.media._store import (
    GRACE_SECONDS,
    MEDIA_DIR,
    MediaError,
    MediaSink,
    MediaSource,
    MediaStore,
    Stored,
    human_size,
    move_media,
    referenced_media,
)

__all__ = [
    "DEADLINE_SECONDS",
    "GRACE_SECONDS",
    "MEDIA_DIR",
    "OGG_OPUS",
    "VISION_TYPES",
    "DocumentText",
    "DocumentType",
    "MediaError",
    "MediaSink",
    "MediaSource",
    "MediaStore",
    "NotOpus",
    "OpusInfo",
    "Stored",
    "Unreadable",
    "audio_file_name",
    "base_mime",
    "document_type",
    "guess_mime",
    "human_size",
    "message_kind",
    "move_media",
    "opus_info",
    "read_apart",
    "read_document",
    "referenced_media",
    "sniff_image",
    "whole_seconds",
]
