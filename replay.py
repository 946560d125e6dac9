"""``python replay.py --chat X``: replay a chat's LLM calls (see pipeline/tools/replay)."""

import sys

from pipeline.tools.replay import main

if __name__ == "__main__":
    sys.exit(main())
