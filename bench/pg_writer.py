"""Child process of the PostgreSQL benchmark: append single events flat out, report latencies.

``python -m bench.pg_writer --dsn DSN --schema S --name LOG --count N`` appends
N events one commit each through ``PostgresLog`` and prints one JSON line: the
seconds each ``append`` took, from the call to the commit's acknowledgement.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.corpus import sample_message
from events.postgres import PostgresLog


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_writer")
    for flag in ("--dsn", "--schema", "--name", "--tag"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    events = [sample_message(n, chat=f"{args.tag}@s.whatsapp.net") for n in range(args.count)]
    spent: list[float] = []
    with PostgresLog(args.dsn, name=args.name, schema=args.schema, busy_timeout=30.0) as log:
        for event in events:
            started = time.perf_counter()
            log.append(event)
            spent.append(time.perf_counter() - started)
    print(json.dumps(spent), flush=True)


if __name__ == "__main__":
    main()
