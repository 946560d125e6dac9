"""Import neonize without the pipe it leaks.

neonize's import runs ``os.popen("uname -a").read()`` and never closes the
pipe (neonize/utils/platform.py): a ResourceWarning whenever the process is
reaped, which this suite's ``filterwarnings = error`` turns into an error in
whichever test runs then. Import this module before anything that imports
neonize.
"""

import io
import subprocess
from unittest import mock


def _closed_popen(command: str, *_: object) -> io.StringIO:
    """``os.popen`` for reading, with the process waited for and its pipe closed."""
    result = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return io.StringIO(result.stdout)


with mock.patch("os.popen", _closed_popen):
    import neonize.aioze.client  # noqa: F401
