"""Entry point: ``python -m pipeline COMMAND``."""

import sys

from events.private import restrict_umask
from pipeline.cli import main

# Everything the bot writes is private, whatever a library creates without asking.
restrict_umask()
sys.exit(main())
