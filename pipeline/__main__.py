"""Entry point: ``python -m pipeline COMMAND`` (the ``wabot`` command is the same)."""

from pipeline.cli import entry

entry()
