"""``python replay.py --chat X``: replay a chat's LLM turns (see pipeline/tools/replay)."""

from pipeline.entry import run_main
from pipeline.tools.replay import main

if __name__ == "__main__":
    run_main(main)  # experiment files and the cache hold chat text: created private
