"""Child process of the RSS benchmark: start up, then print its memory as one JSON line.

``python -m bench.rss_child`` only imports the packages (the baseline);
with ``--store DIR`` it opens the log and ``Runner.start``s it, as the daemon
does; ``--save-snapshot`` then stores the projections' snapshot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def status_kb(field: str) -> int:
    """A ``kB`` figure from /proc/self/status, e.g. VmRSS (now) or VmHWM (peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rss_child")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--save-snapshot", action="store_true")
    args = parser.parse_args()
    seq = 0
    if args.store is None:
        # What every process pays before doing anything: the baseline.
        import msgspec  # noqa: F401, PLC0415

        import events  # noqa: F401, PLC0415
        import projections  # noqa: F401, PLC0415
    else:
        from events.backends import open_log  # noqa: PLC0415
        from projections.runner import Runner  # noqa: PLC0415

        log = open_log(args.store)
        runner = Runner.start(log)
        seq = runner.seq
        if args.save_snapshot:
            runner.snapshot(log)
    # Not ru_maxrss: Linux carries the parent's peak over exec, so a child of a
    # big process would report the parent's figure.
    report = {"vmrss_kb": status_kb("VmRSS"), "vmhwm_kb": status_kb("VmHWM"), "seq": seq}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
