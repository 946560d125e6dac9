"""What the PostgreSQL end-to-end tests share: a schema of their own and many chats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.pg_support import own_schema, require_server, schema_url


def users(count: int) -> dict[str, Any]:
    """Overrides monitoring ``count`` direct chats (one reply per message, no bursts)."""
    return {
        "monitored_entities": [
            {"type": "user", "phone": user_phone(n), "name": f"User{n}"} for n in range(count)
        ]
        + [{"type": "self", "name": "Me"}]
    }


def user_phone(n: int) -> str:
    return f"4917010{n:05d}"


def user_jid(n: int) -> str:
    return f"{user_phone(n)}@s.whatsapp.net"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A ``postgresql://…?schema=`` URL of this test's own schema, dropped after."""
    require_server()
    with own_schema() as schema:
        yield schema_url(schema)
