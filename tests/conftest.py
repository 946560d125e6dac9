import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def loose_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A umask that would leave new files readable by others (the usual 022, and none)."""
    old = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(old)
