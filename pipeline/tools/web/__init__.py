"""``python -m pipeline web``: a read-only web console over the log, with /healthz and /metrics.

Pages: the chats, a chat's timeline, one turn in full, replay experiments
side by side, a dashboard with charts, and search. It opens the log read-only
(``events.backends.open_reader``), so it is safe beside the daemon and works
on a copy of a store. ``run`` starts the same server when ``web.enabled`` is
true, handing it a ``DaemonProbe`` (the daemon's pulse) for ``/healthz``.
"""

from pipeline.tools.web._app import create_app
from pipeline.tools.web._console import Console
from pipeline.tools.web._health import DaemonProbe
from pipeline.tools.web._server import WebError, bind, run_standalone, serve, url_of

__all__ = [
    "Console",
    "DaemonProbe",
    "WebError",
    "bind",
    "create_app",
    "run_standalone",
    "serve",
    "url_of",
]
