"""The console in a real browser: Debian's Chromium driven by Playwright, over a real socket.

Never ``playwright install``: the system Chromium is launched by its path. Where
it is missing these tests skip with one line, unless WABOT_REQUIRE_BROWSER=1
(as in CI, which installs it), where they fail. Screenshots go to
``$WABOT_SCREENSHOTS`` when set, else to pytest's temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

from events.backends import open_log
from events.model import MessageReceived
from tests.e2e.harness import GROUP, daemon_env
from tests.web.conftest import (
    AFTER_EDIT,
    IMAGE_CAPTION,
    OWNER_TEXT,
    REPLAYED_REPLY,
    SCRIPT_TEXT,
    VOICE_TEXT,
    MediaRecording,
    Served,
    WebStore,
    start_web,
)

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-token-0123456789"
PNG = b"\x89PNG\r\n\x1a\n"

if not CHROMIUM.is_file():
    # One line for the whole module; CI, which installs Chromium, fails instead.
    MISSING = f"Chromium not found at {CHROMIUM}: apt install chromium"
    if os.environ.get("WABOT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{MISSING} (WABOT_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def console(web_store: WebStore) -> Iterator[Served]:
    web = start_web(web_store.store)
    yield web
    web.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("WABOT_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """A browser tab that fails the test on a script dialog or a console error (a CSP breach)."""

    def __init__(self, page: Page, base: str, shots: Path) -> None:
        self.page = page
        self.base = base
        self.shots = shots
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path.lstrip("/"))
        assert response is not None
        assert response.status == 200, (path, response.status)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        assert path.read_bytes()[:8] == PNG
        return path


@pytest.fixture
def visit(browser: Browser, console: Served, shots: Path) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    tab = Visit(context.new_page(), console.url, shots)
    yield tab
    context.close()
    assert tab.dialogs == []
    assert tab.errors == []


def test_from_the_chat_list_into_a_turn(visit: Visit):
    page = visit.page
    visit.go("/")
    visit.shot("chats")
    page.get_by_role("link", name="Alice", exact=True).click()
    page.wait_for_url(re.compile(r"/chats/491701111111@s\.whatsapp\.net$"))
    assert "9 turns" in page.locator("p.summary").inner_text()
    visit.shot("chat-alice")

    page.get_by_role("link", name="#1", exact=True).click()
    page.wait_for_url(re.compile(r"/turns/\d+$"))
    assert page.locator("h1").inner_text() == "Turn #1: answered by the LLM"
    assert page.locator(".msg p.text").first.inner_text() == "Hotels in Rome?"
    assert page.locator(".reply .sent").inner_text().startswith("sent ")
    assert "Echo: Hotels in Rome?" in page.locator(".response pre").inner_text()
    visit.shot("turn-alice-1")


def test_a_skipped_message_shows_its_reason(visit: Visit):
    page = visit.page
    visit.go("/")
    page.get_by_role("link", name="Family", exact=True).click()
    article = page.locator("article.turn")
    assert article.count() == 1
    assert article.locator(".decision").inner_text() == (
        'skipped: it does not mention you or quote the bot, and no keyword matched ("bot")'
    )
    assert article.locator(".code").inner_text() == "not_triggered"
    article.get_by_role("link", name="#1", exact=True).click()
    page.wait_for_url(re.compile(r"/turns/\d+$"))
    assert page.locator("strong.reason").inner_text() == "not_triggered"
    assert page.locator(".msg p.text").inner_text() == "dinner at eight?"
    visit.shot("turn-family-skipped")


def test_the_owner_taking_over_is_shown_on_the_chat_list(visit: Visit):
    visit.go("/")
    row = visit.page.locator("tr.chat-row", has_text="Alice")
    assert "owner took over: silent until" in row.locator(".paused").inner_text()
    visit.go("/chats/491701111111@s.whatsapp.net")
    takeover = visit.page.locator("article.turn", has_text=OWNER_TEXT)
    assert (
        takeover.locator(".decision")
        .inner_text()
        .startswith("skipped: you wrote here yourself: the bot stays silent in this chat until ")
    )


def test_html_in_a_message_shows_as_text_and_never_runs(visit: Visit):
    visit.go("/chats/491701111111@s.whatsapp.net")
    shown = visit.page.locator(".msg p.text", has_text="window.__xss")
    assert shown.inner_text() == SCRIPT_TEXT
    assert (
        visit.page.locator(".reply p.text", has_text="window.__xss")
        .inner_text()
        .startswith(f"Echo: {SCRIPT_TEXT}")
    )
    assert visit.page.evaluate("typeof window.__xss") == "undefined"
    assert visit.page.locator("main b").count() == 0
    visit.shot("escaped")


def test_search_from_the_header_leads_to_the_turn(visit: Visit):
    page = visit.page
    visit.go("/")
    page.get_by_role("searchbox", name="Search").fill("florence")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=florence$"))
    assert page.locator("li.hit").count() == 2
    assert page.locator("li.hit mark").first.inner_text() == "Florence"
    visit.shot("search")
    page.locator("li.hit").first.get_by_role("link", name="the turn").click()
    assert page.locator("h1").inner_text() == "Turn #2: answered by the LLM"


def test_the_dashboard_draws_charts_without_a_script(visit: Visit):
    visit.go("/dashboard")
    page = visit.page
    assert page.locator("svg.chart").count() == 6
    assert page.locator("svg.chart rect.bar").count() >= 60
    assert page.locator("script").count() == 0
    failures = page.locator("figure", has_text="Failures by reason")
    assert "LLM HTTP 400" in failures.inner_text()
    visit.shot("dashboard")


def test_a_replay_experiment_side_by_side(visit: Visit):
    page = visit.page
    visit.go("/replays")
    page.locator("table a").first.click()
    page.wait_for_url(re.compile(r"/replays/.+\.json$"))
    assert page.locator("section.new p.text").inner_text().startswith(REPLAYED_REPLY)
    assert page.locator("p.diff ins").inner_text().strip() == "Try Trastevere."
    visit.shot("replay")


def test_a_token_login_in_the_browser(browser: Browser, web_store: WebStore, shots: Path):
    web = start_web(web_store.store, env=daemon_env(WABOT_WEB_TOKEN=TOKEN))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(web.url)
        page.wait_for_url(re.compile(r"/login$"))
        page.get_by_label("Token").fill("not the token")
        page.get_by_role("button", name="Log in").click()
        assert page.locator("p.bad").inner_text() == "Wrong token."
        page.get_by_label("Token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url)
        assert page.get_by_role("link", name="Alice", exact=True).is_visible()
        assert TOKEN not in page.url
    finally:
        context.close()
        web.close()


def test_logging_out_ends_the_session_on_the_server(
    browser: Browser, web_store: WebStore, shots: Path
):
    """On a shared machine: after "Log out" the cookie the browser had opens nothing,
    neither in this browser nor copied into another, and no page of the log shows."""
    web = start_web(web_store.store, env=daemon_env(WABOT_WEB_TOKEN=TOKEN))
    context = browser.new_context()
    try:
        tab = Visit(context.new_page(), web.url, shots)
        page = tab.page
        page.goto(web.url + "login")
        page.get_by_label("Token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url)
        assert page.get_by_role("link", name="Alice", exact=True).is_visible()
        [old] = [c for c in context.cookies() if c["name"] == "wabot_session"]
        tab.shot("logged-in")

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r"/login$"))
        assert page.get_by_label("Token").is_visible()
        assert [c for c in context.cookies() if c["name"] == "wabot_session"] == []
        page.go_back()  # the page the browser showed before: asked again, not from a cache
        page.wait_for_url(re.compile(r"/login$"))
        assert page.get_by_role("link", name="Alice").count() == 0

        # The old cookie, kept by whoever copied it, is refused by the server.
        context.add_cookies([{"name": old["name"], "value": old["value"], "url": web.url}])
        page.goto(web.url + "chats/491701111111@s.whatsapp.net")
        page.wait_for_url(re.compile(r"/login$"))
        assert "Hotels in Rome?" not in page.content()
        assert tab.dialogs == []
        assert tab.errors == []
        with httpx.Client(base_url=web.url) as client:
            cookie = {"cookie": f"wabot_session={old['value']}"}
            assert client.get("/metrics", headers=cookie).status_code == 401
            refused = client.get("/", headers={**cookie, "accept": "text/html"})
            assert refused.status_code == 303
            assert refused.headers["location"] == "/login"
    finally:
        context.close()
        web.close()


# -- a conversation with attachments, an edit and a group of two (issue 22 item 10) -----


@pytest.fixture(scope="module")
def media_console(media_store: MediaRecording) -> Iterator[Served]:
    web = start_web(media_store.store)
    yield web
    web.close()


@pytest.fixture
def media_visit(browser: Browser, media_console: Served, shots: Path) -> Iterator[Visit]:
    # Narrow enough that a date in the chat list would break at its spaces.
    context = browser.new_context(viewport={"width": 760, "height": 900}, locale="en-GB")
    tab = Visit(context.new_page(), media_console.url, shots)
    yield tab
    context.close()
    assert tab.dialogs == []
    assert tab.errors == []


# How many lines of text an element's content takes.
LINES = (
    "e => { const r = document.createRange(); r.selectNodeContents(e);"
    " return r.getClientRects().length; }"
)


def test_dates_in_the_chat_list_stay_on_one_line(media_visit: Visit):
    media_visit.go("/")
    cells = media_visit.page.locator("td.when")
    assert cells.count() == 3
    assert [cells.nth(i).evaluate(LINES) for i in range(3)] == [1, 1, 1]
    # The table scrolls in its box; the page itself stays as wide as the window.
    assert media_visit.page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    family = media_visit.page.locator("tr.chat-row", has_text="Family")
    assert "2 live (one per sender), until" in family.inner_text()
    media_visit.shot("chats-narrow")


def test_a_voice_note_and_a_photo_read_as_what_they_were(media_visit: Visit):
    page = media_visit.page
    media_visit.go("/chats/491701111111@s.whatsapp.net")
    voice = page.locator(".msg", has_text=VOICE_TEXT)
    assert voice.locator(".attachment").inner_text() == "voice note · 7 s · audio/ogg · 20 KB"
    assert voice.locator(".outcome").inner_text() == (
        f"transcript (whisper-1, $0.0007): {VOICE_TEXT}"
    )
    assert voice.locator(".event").count() == 0  # no generic event, no raw JSON
    photo = page.locator("article.turn", has=page.locator(".msg", has_text=IMAGE_CAPTION))
    assert photo.locator(".msg .attachment").inner_text() == "image · image/png · 1 KB"
    photo.locator("summary", has_text="LLM request").click()
    assert photo.locator(".image-ref").inner_text().startswith("+ image image/png, sha256 ")
    media_visit.shot("chat-alice-media")


def test_an_edit_is_found_by_search(media_visit: Visit):
    page = media_visit.page
    media_visit.go("/")
    page.get_by_role("searchbox", name="Search").fill("mario")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=mario$"))
    [hit] = page.locator("li.hit").all()
    assert "received (edited)" in hit.locator(".meta").inner_text()
    assert hit.locator("mark").inner_text() == "Mario"
    hit.get_by_role("link", name="the turn").click()
    assert page.locator(".edited").inner_text() == f"edited to: {AFTER_EDIT}"


def test_a_search_hit_opens_the_chat_at_its_message(media_visit: Visit):
    page = media_visit.page
    for words, query in [(VOICE_TEXT, "morgen"), (AFTER_EDIT, "mario")]:
        media_visit.go(f"/search?q={query}")
        hit = page.locator("li.hit", has_text="received (")  # the transcript, the edit
        hit.get_by_role("link", name="in the timeline").click()
        page.wait_for_url(re.compile(r"/chats/[^/#]+#s\d+$"))
        target = page.locator(".msg:target")
        assert target.count() == 1, page.url
        assert words in target.inner_text()


def test_a_right_to_left_push_name_stays_inside_its_name(
    browser: Browser, web_store: WebStore, tmp_path: Path, shots: Path
):
    """A RIGHT-TO-LEFT OVERRIDE in someone's push name reverses the name, never the time
    and the message id after it on the line."""
    copied = web_store.recording.copy(tmp_path / "copy").store
    with open_log(copied) as log:
        log.append(
            MessageReceived(
                chat=GROUP,
                msg_id="RTL1",
                sender="491705500001@s.whatsapp.net",
                push_name="\u202eyrallaM",
                text="hello everyone",
                is_group=True,
            )
        )
    web = start_web(copied)
    context = browser.new_context(viewport={"width": 900, "height": 700}, locale="en-GB")
    try:
        tab = Visit(context.new_page(), web.url, shots)
        tab.go(f"/chats/{GROUP}")
        meta = tab.page.locator(".msg", has_text="hello everyone").locator(".meta")
        who, msg_id = meta.locator(".who").bounding_box(), meta.locator(".id").bounding_box()
        tab.shot("rtl-push-name")
        assert who is not None
        assert msg_id is not None
        assert who["x"] + who["width"] <= msg_id["x"], (who, msg_id)  # name, then the id
        assert meta.inner_text().endswith("RTL1")
    finally:
        context.close()
        web.close()
