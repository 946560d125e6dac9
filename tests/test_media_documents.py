"""A document's text for the model: PDFs through pypdf, text files, and what cannot be read."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from pipeline.media import (
    Unreadable,
    audio_file_name,
    document_type,
    read_apart,
    read_document,
    sniff_image,
)
from tests.media_files import CERTIFICATE, broken_pdf, jpeg, pdf, pdf_bomb, png, write


def test_a_pdfs_text_page_by_page(tmp_path: Path) -> None:
    path = write(tmp_path, "a.pdf", pdf("Quarterly report\nRevenue rose 12 %", "Page two"))
    read = read_document(path, "pdf", 4000)
    assert read.text == "Quarterly report\nRevenue rose 12 %\n\nPage two"
    assert (read.pages, read.cut) == (2, False)


def test_a_long_pdf_is_cut_and_its_later_pages_never_read(tmp_path: Path) -> None:
    pages = [f"page {n} " + "word " * 50 for n in range(40)]
    path = write(tmp_path, "long.pdf", pdf(*pages))
    read = read_document(path, "pdf", 300)
    assert len(read.text) == 300
    assert read.text.startswith("page 0 word")
    assert (read.pages, read.cut) == (40, True)


def test_a_damaged_pdf_is_unreadable_with_a_short_reason(tmp_path: Path) -> None:
    with pytest.raises(Unreadable) as caught:
        read_document(write(tmp_path, "bad.pdf", broken_pdf()), "pdf", 4000)
    assert caught.value.reason == "the PDF is damaged"
    assert str(caught.value).startswith("the PDF is damaged (")


def test_a_pdf_behind_a_password_is_unreadable(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(write(tmp_path, "a.pdf", pdf("secret"))))
    writer.encrypt("hunter2", algorithm="AES-128")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as file:
        writer.write(file)
    with pytest.raises(Unreadable, match="protected by a password"):
        read_document(locked, "pdf", 4000)


@pytest.mark.parametrize(
    ("odd", "error"),
    [
        ({"encrypt": CERTIFICATE}, "NotImplementedError"),
        pytest.param(
            {"stream": b"/Filter /JBIG2Decode "},
            "DependencyError",
            marks=pytest.mark.skipif(bool(shutil.which("jbig2dec")), reason="jbig2dec is here"),
        ),
        ({"stream": b"/Filter /LZW "}, "DeprecationError"),
    ],
)
def test_a_pdf_pypdf_cannot_handle_is_unreadable(
    tmp_path: Path, odd: dict[str, bytes], error: str
) -> None:
    """Not an exception of pypdf's own family: escaping, it failed the chat's turn for good."""
    with pytest.raises(Unreadable) as caught:
        read_document(write(tmp_path, "odd.pdf", pdf("Hello", **odd)), "pdf", 4000)
    assert caught.value.reason == "it uses a PDF feature I can't read"
    assert error in str(caught.value)


@pytest.mark.anyio
async def test_a_pdf_read_apart_reads_as_in_the_daemon(tmp_path: Path) -> None:
    path = write(tmp_path, "a.pdf", pdf("Quarterly report", "Page two"))
    assert await read_apart(path, "pdf", 4000, seconds=30) == read_document(path, "pdf", 4000)
    bad = write(tmp_path, "bad.pdf", broken_pdf())
    with pytest.raises(Unreadable) as apart:
        await read_apart(bad, "pdf", 4000, seconds=30)
    with pytest.raises(Unreadable) as here:
        read_document(bad, "pdf", 4000)
    assert (apart.value.reason, str(apart.value)) == (here.value.reason, str(here.value))
    with pytest.raises(FileNotFoundError):  # "its file is gone", as in the daemon
        await read_apart(tmp_path / "gone.pdf", "pdf", 4000, seconds=30)


@pytest.mark.anyio
async def test_a_small_pdf_that_takes_too_long_to_read_is_stopped(tmp_path: Path) -> None:
    """A few KB inflating to MB of text operators: pypdf's cost is quadratic in them (here
    seconds; up to an hour at its own cap), and ``max_chars`` is only seen between pages."""
    path = write(tmp_path, "bomb.pdf", pdf_bomb(4))
    assert path.stat().st_size < 50_000
    started = time.monotonic()
    with pytest.raises(Unreadable) as caught:
        await read_apart(path, "pdf", 4000, seconds=1)
    assert time.monotonic() - started < 3  # killed at its deadline, not read to the end
    assert caught.value.reason == "it takes too long to read"
    assert str(caught.value) == "it takes too long to read (not read within 1 s)"


def test_text_files_are_read_as_utf8_and_cut(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.md", "# Einkauf\nÄpfel, Birnen\n".encode() * 100)
    read = read_document(path, "text", 50)
    assert read.text == ("# Einkauf\nÄpfel, Birnen\n" * 3)[:50]
    assert (read.pages, read.cut) == (None, True)
    with pytest.raises(Unreadable, match="not a text file"):
        read_document(write(tmp_path, "x.txt", b"\x00\x01binary"), "text", 50)


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("UTF-16 (LE) with its BOM", "Name;Stadt\nJürgen;Köln\n".encode("utf-16")),
        ("UTF-16 BE with its BOM", b"\xfe\xff" + "Name;Stadt\nJürgen;Köln\n".encode("utf-16-be")),
        ("UTF-8 with a BOM", "\ufeffName;Stadt\nJürgen;Köln\n".encode()),
        ("Windows-1252", "Name;Stadt\nJürgen;Köln\n".encode("cp1252")),
    ],
    ids=["utf-16", "utf-16-be", "utf-8-bom", "cp1252"],
)
def test_text_files_in_other_encodings_are_read(tmp_path: Path, encoding: str, data: bytes) -> None:
    """A CSV as Excel saves it: UTF-16 was refused as "not a text file", Windows-1252
    reached the model as replacement characters."""
    read = read_document(write(tmp_path, "list.csv", data), "text", 4000)
    assert read.text == "Name;Stadt\nJürgen;Köln\n", encoding


def test_a_character_cut_at_the_limit_is_not_mistaken_for_another_encoding(
    tmp_path: Path,
) -> None:
    read = read_document(write(tmp_path, "a.txt", "ü".encode() * 100), "text", 10)
    assert (read.text, read.cut) == ("ü" * 10, True)
    read = read_document(write(tmp_path, "b.txt", "€".encode() * 100), "text", 11)
    assert (read.text, read.cut) == ("€" * 11, True)


@pytest.mark.parametrize(
    ("mime", "name", "kind"),
    [
        ("application/pdf", "r.pdf", "pdf"),
        ("application/octet-stream", "Report.PDF", "pdf"),
        ("text/plain", None, "text"),
        ("text/csv", "a.csv", "text"),
        ("application/json", None, "text"),
        ("application/octet-stream", "notes.md", "text"),
        ("application/vnd.ms-excel", "budget.xls", None),
        ("application/zip", "a.zip", None),
    ],
)
def test_which_documents_are_read(mime: str, name: str | None, kind: str | None) -> None:
    assert document_type(mime, name) == kind


def test_images_are_recognised_by_their_bytes() -> None:
    assert sniff_image(png()[:32]) == "image/png"
    assert sniff_image(jpeg()[:32]) == "image/jpeg"
    assert sniff_image(b"GIF89a....") == "image/gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image(b"\x00\x00\x00\x18ftypheic") is None
    assert sniff_image(b"%PDF-1.4") is None


@pytest.mark.parametrize(
    ("mime", "name", "sent_as"),
    [
        ("audio/ogg; codecs=opus", None, "audio.ogg"),
        ("audio/mpeg", "song.mp3", "song.mp3"),
        ("audio/mp4", "memo", "audio.m4a"),  # the service reads the format off the suffix
        ("audio/amr", None, "audio.ogg"),
    ],
)
def test_audio_goes_out_with_a_suffix_the_service_knows(
    mime: str, name: str | None, sent_as: str
) -> None:
    assert audio_file_name(mime, name) == sent_as
