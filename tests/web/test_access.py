"""WABOT_WEB_TOKEN: a bearer token or a login cookie on every route but the login (and CSS)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from pipeline.tools.web import Console, create_app
from tests.e2e.harness import daemon_env
from tests.web.conftest import WebStore, start_web, text_of
from tests.web.test_pages import asgi_client

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
TOKEN = "s3cret-token-0123456789"
HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture
async def client(web_store: WebStore) -> AsyncIterator[httpx.AsyncClient]:
    console = Console(web_store.store)
    # Any host name is answered when a token guards the console.
    async with asgi_client(create_app(console, token=TOKEN), "http://bot.example.org") as c:
        yield c
    console.close()


async def test_a_browser_without_the_token_is_sent_to_the_login(client: httpx.AsyncClient):
    response = await client.get("/dashboard", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    login = await client.get("/login", headers=HTML)
    assert login.status_code == 200
    assert 'type="password" name="token"' in login.text
    # Nothing about the store shows before the login.
    assert "store" not in text_of(login.text)
    assert "healthy" not in login.text
    assert (await client.get("/static/console.css")).status_code == 200


@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics", "/search?q=rome"])
async def test_a_program_without_the_token_is_refused(client: httpx.AsyncClient, path: str):
    response = await client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="wabot"'
    wrong = await client.get(path, headers={"authorization": "Bearer wrong-token-0123456789"})
    assert wrong.status_code == 401
    right = await client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
    assert right.status_code in (200, 503)  # /healthz: no daemon runs on the recording


async def test_a_token_in_the_url_logs_in_and_is_dropped_from_the_url(client: httpx.AsyncClient):
    refused = await client.get("/search?q=rome&token=nope", headers=HTML)
    assert refused.status_code == 401
    assert "wabot_session" not in refused.headers.get("set-cookie", "")

    response = await client.get(f"/search?q=rome&token={TOKEN}", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/search?q=rome"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("wabot_session=")
    assert TOKEN not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    page = await client.get("/search?q=rome", headers=HTML)  # the client keeps the cookie
    assert page.status_code == 200
    assert "Rome" in text_of(page.text)


async def test_a_redirect_after_login_stays_on_this_server(client: httpx.AsyncClient):
    url = httpx.URL("http://bot.example.org").copy_with(
        raw_path=f"//evil.example/x?token={TOKEN}".encode()
    )
    response = await client.get(url, headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/evil.example/x"


async def test_the_login_form_sets_the_cookie(client: httpx.AsyncClient):
    wrong = await client.post("/login", data={"token": "nope"}, headers=HTML)
    assert wrong.status_code == 401
    assert "Wrong token." in text_of(wrong.text)
    response = await client.post("/login", data={"token": TOKEN}, headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert (await client.get("/", headers=HTML)).status_code == 200
    forged = httpx.Cookies({"wabot_session": "0" * 64})
    client.cookies = forged
    assert (await client.get("/", headers=HTML)).status_code == 303


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None, "no logout form"
    return found.group(1)


async def test_a_logout_needs_its_own_sessions_form(web_store: WebStore):
    """Another page (another site's, or another port of this host, to which a SameSite
    cookie still goes) cannot end a session: the form's CSRF value is the session's."""
    console = Console(web_store.store)
    app = create_app(console, token=TOKEN)
    try:
        async with asgi_client(app) as client, asgi_client(app) as other:
            for browser in (client, other):
                assert (await browser.post("/login", data={"token": TOKEN})).status_code == 303
            mine = _csrf((await client.get("/", headers=HTML)).text)
            theirs = _csrf((await other.get("/", headers=HTML)).text)
            session = client.cookies["wabot_session"]
            for forged in ({}, {"csrf": "0" * 64}, {"csrf": theirs}):
                refused = await client.post("/logout", data=forged, headers=HTML)
                assert refused.status_code == 403
                assert (await client.get("/", headers=HTML)).status_code == 200  # still open

            done = await client.post("/logout", data={"csrf": mine}, headers=HTML)
            assert done.status_code == 303
            assert done.headers["location"] == "/login"
            assert 'wabot_session=""' in done.headers["set-cookie"]
            client.cookies = httpx.Cookies({"wabot_session": session})  # kept by someone
            assert (await client.get("/", headers=HTML)).status_code == 303
            assert (await client.get("/metrics")).status_code == 401
            # Logged out, a second post has no session to end: off to the login page.
            again = await client.post("/logout", data={"csrf": mine}, headers=HTML)
            assert again.headers["location"] == "/login"
            assert (await other.get("/", headers=HTML)).status_code == 200  # theirs goes on
    finally:
        console.close()


async def test_a_bearer_token_has_no_session_and_no_logout_form(client: httpx.AsyncClient):
    bearer = {**HTML, "authorization": f"Bearer {TOKEN}"}
    page = await client.get("/", headers=bearer)
    assert page.status_code == 200
    assert "/logout" not in page.text


async def test_a_huge_login_body_is_refused(client: httpx.AsyncClient):
    response = await client.post("/login", content=b"token=" + b"x" * 10_000)
    assert response.status_code == 413


def test_behind_a_tls_proxy_on_this_machine_the_cookie_is_secure(web_store: WebStore):
    """The README's reverse proxy: it connects from loopback and says the browser came
    over https; the session cookie (login form or ?token=) must then be Secure."""
    web = start_web(web_store.store, env=daemon_env(WABOT_WEB_TOKEN=TOKEN))
    proxied = {**HTML, "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    try:
        with httpx.Client(base_url=web.url) as client:
            form = client.post("/login", data={"token": TOKEN}, headers=proxied)
            url = client.get(f"/?token={TOKEN}", headers=proxied)
            plain = client.post("/login", data={"token": TOKEN}, headers=HTML)
    finally:
        web.close()
    for response in (form, url):
        assert response.status_code == 303
        assert "; secure" in response.headers["set-cookie"].lower()
    assert "secure" not in plain.headers["set-cookie"].lower()  # http straight to it


def test_every_wrong_token_is_logged_once_and_never_the_token(web_store: WebStore):
    web = start_web(web_store.store, env=daemon_env(WABOT_WEB_TOKEN=TOKEN))
    guesses = [f"guess-{n}-0123456789abcdef" for n in range(4)]
    try:
        with httpx.Client(base_url=web.url) as client:
            assert client.post("/login", data={"token": guesses[0]}).status_code == 401
            assert client.get(f"/login?token={guesses[1]}").status_code == 401
            assert client.get(f"/?token={guesses[2]}", headers=HTML).status_code == 401
            bearer = {"authorization": f"Bearer {guesses[3]}"}
            assert client.get("/metrics", headers=bearer).status_code == 401
            assert client.get("/metrics").status_code == 401  # no token: nothing to log
            assert client.post("/login", data={"token": TOKEN}).status_code == 303
        assert web.stop() == 0
    finally:
        web.close()
    logged = "".join(web.stderr)
    refusals = [json.loads(line) for line in web.stderr if "web_login_refused" in line]
    assert [r.get("via") for r in refusals] == ["form", "url", "url", "bearer"]
    assert {r["client"] for r in refusals} == {"127.0.0.1"}
    assert not any(guess in logged for guess in guesses)
    assert TOKEN not in logged
