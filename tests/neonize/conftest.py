"""What every test of the WhatsApp (neonize) transport shares: neonize's loop reset, a factory.

The transport's tests drive real neonize protobufs through neonize's own
dispatch with a recording Go stand-in (``tests.neonize_fakes``).
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: importing neonize configures logging)

# isort: split
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neonize.aioze.events as neonize_events
import pytest

from tests.neonize_fakes import transport_factory


@pytest.fixture(autouse=True)
def neonize_loop() -> Iterator[None]:
    """neonize keeps the first loop that connects in a module global; each test has its own."""
    neonize_events.event_global_loop = None
    yield
    neonize_events.event_global_loop = None


@pytest.fixture
def make_transport(tmp_path: Path) -> Any:
    """``make(**kwargs) -> (NeonizeTransport, FakeGo)`` on a fresh session file."""
    return transport_factory(tmp_path)
