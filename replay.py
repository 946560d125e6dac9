"""``python replay.py --chat X``: replay a chat's LLM calls (see pipeline/tools/replay)."""

import sys

from events.private import restrict_umask
from pipeline.tools.replay import main

if __name__ == "__main__":
    restrict_umask()  # experiment files and the cache hold chat text
    sys.exit(main())
