"""What the bot writes is its owner's alone, and unmonitored chats leave no trace (issue 9)."""

from __future__ import annotations

from events.model import LlmFailed, MessageReceived
from tests.conversation import Recording, run_replay
from tests.e2e.harness import ALICE, iter_store_files, loose_modes, run_cli

LOOSE = 0o022  # the usual default: files 0644, directories 0755


def test_every_path_in_the_store_is_private_under_umask_022(make_daemon, llm_server):
    d = make_daemon({"logging": {"level": "DEBUG"}}, umask=LOOSE)
    msg_id = d.message("hello")
    assert d.next_sent()["reply_to"] == msg_id
    d.wait_event(MessageReceived, msg_id=msg_id)

    running = {p.name for p in iter_store_files(d.store)}
    assert {"events.db", "events.db-wal", "events.db-shm", "daemon.lock", "wabot.log"} <= running
    assert loose_modes(d.store) == []
    code, stderr = d.stop()
    assert code == 0, stderr[-2000:]
    assert loose_modes(d.store) == []

    # The offline tools create files too: experiment files, the response cache.
    replayed = run_replay(
        ["--chat", "Alice", "--prompt", "Be brief."],
        Recording(d.workdir, 1, ()),
        llm_server,
        umask=LOOSE,
    )
    assert replayed.returncode == 0, replayed.stderr
    compacted = run_cli(["compact", "--store", str(d.store)], cwd=d.workdir, env=d.env, umask=LOOSE)
    assert compacted.returncode == 0, compacted.stderr

    holders = {p.parent.relative_to(d.store).parts[:2] for p in iter_store_files(d.store)}
    assert holders >= {("replays",), ("replays", "cache"), ("logs",)}
    assert loose_modes(d.store) == []


def test_a_store_left_readable_by_an_older_version_is_made_private(make_daemon):
    d = make_daemon(umask=LOOSE)
    code, _ = d.stop()
    assert code == 0
    for path in [d.store, *d.store.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    d.restart()
    d.message("hello again")
    d.next_sent()

    assert loose_modes(d.store) == []


STRANGER_TEXT = "zq-unmonitored-text-5521"
STRANGER_NAME = "Zebulon Quint"
STRANGER_NUMBER = "491709999999"
STRANGER_LID = "271828182845904@lid"
MEMBER_NUMBER = "491708888888"
MEMBER_NAME = "Quirinus Member"
OTHER_GROUP = "120363555555555555@g.us"


def test_nothing_of_an_unmonitored_chat_is_written_anywhere(make_daemon):
    d = make_daemon({"logging": {"level": "DEBUG"}})
    d.message(
        STRANGER_TEXT,
        chat=f"{STRANGER_NUMBER}@s.whatsapp.net",
        push_name=STRANGER_NAME,
        sender_alt=STRANGER_LID,
    )
    d.message(
        STRANGER_TEXT + " in a group",
        chat=OTHER_GROUP,
        sender=f"{MEMBER_NUMBER}@s.whatsapp.net",
        push_name=MEMBER_NAME,
        mentions=[f"{STRANGER_NUMBER}@s.whatsapp.net"],
    )
    d.send(type="edit", chat=f"{STRANGER_NUMBER}@s.whatsapp.net", id="S1", text=STRANGER_TEXT)
    d.send(type="revoke", chat=OTHER_GROUP, id="S2")
    # Lines are handled in order: once this is answered, the strangers' have been seen.
    msg_id = d.message("hello", chat=ALICE)
    assert d.next_sent()["reply_to"] == msg_id
    code, stderr = d.stop()
    assert code == 0

    places = {"stderr": stderr.encode(), "stdout": "\n".join(d.stdout_lines).encode()}
    places |= {str(p): p.read_bytes() for p in iter_store_files(d.store)}
    secrets = [STRANGER_TEXT, STRANGER_NAME, STRANGER_NUMBER, "271828182845904", OTHER_GROUP]
    secrets += [MEMBER_NUMBER, MEMBER_NAME]
    leaks = [(s, where) for s in secrets for where, data in places.items() if s.encode() in data]
    assert leaks == []
    assert '"dropped_unmonitored": 4' in stderr  # the count is all that is said
    assert '"level": "debug"' in stderr


URL_PASSWORD = "Pw-in-a-url-4b3a2918"


def test_a_password_in_a_url_is_written_nowhere(make_daemon, llm_server):
    """An LLM endpoint behind an authenticating proxy (a local server: no API key, which
    the URL's password would take the place of) and a WhatsApp proxy, both with
    user:PASSWORD@: the config is recorded, errors and httpx's DEBUG lines logged, the
    tools print them, and each shows ``user:***@``."""
    proxy = f"socks5://puser:{URL_PASSWORD}@127.0.0.1:1080"  # unused by the stdio transport
    d = make_daemon(
        {
            "logging": {"level": "DEBUG"},
            "whatsapp": {"phone_number": "491700000000", "proxy": proxy},
            "llm": {"provider": "openai", "max_retries": 0},
        },
        env={
            "LLM_BASE_URL": llm_server.base_url.replace("//", f"//proxyuser:{URL_PASSWORD}@"),
            "PERPLEXITY_API_KEY": None,
        },
    )
    d.message("hello", chat=ALICE)
    failed = d.wait_event(LlmFailed, final=True)
    assert failed.status == 401  # the password went out (Basic): the fake server wants Bearer
    code, stderr = d.stop()
    assert code == 0, stderr[-2000:]
    assert "HTTP Request: POST http://proxyuser:***@" in stderr  # httpx's line, masked

    audit = run_cli(
        ["audit", "--chat", "Alice", "--json", "--store", str(d.store)], cwd=d.workdir, env=d.env
    )
    assert audit.returncode == 0, audit.stderr
    assert "socks5://puser:***@127.0.0.1:1080" in audit.stdout
    places = {"stderr": stderr, "stdout": "\n".join(d.stdout_lines), "audit": audit.stdout}
    places |= {str(p): p.read_bytes().decode(errors="replace") for p in iter_store_files(d.store)}
    assert [where for where, text in places.items() if URL_PASSWORD in text] == []
