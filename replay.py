"""``python replay.py --chat X``: replay a chat's LLM turns (see pipeline/replay/cli.py)."""

import sys

from pipeline.replay.cli import main

if __name__ == "__main__":
    sys.exit(main())
