"""The function tools the model may call (docs/llm.md, "Tools"; DESIGN §11.4).

Each tool is one module: its name, description, JSON schema and a pure
handler ``(scene, args) -> Result`` whose events are its effect. ``offered``
says which a chat gets, ``specs`` what goes on the wire, ``run`` answers one
call (bad calls become error results). Shared by the daemon, which records
what a call did, and replay, which never runs one (it reuses or simulates).
"""

from pipeline.toolbox._catalogue import TOOLS, offered, run, specs
from pipeline.toolbox._tool import Result, Scene, Tool, output_text, refused
from pipeline.toolbox._when import iso as local_iso

__all__ = [
    "TOOLS",
    "Result",
    "Scene",
    "Tool",
    "local_iso",
    "offered",
    "output_text",
    "refused",
    "run",
    "specs",
]
