#!/usr/bin/env bash
# Start wabot from its checkout's virtualenv; extra arguments go to `pipeline run`.
# Used by deploy/wabot.service; also handy by hand: deploy/run.sh --transport stdio
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  echo "wabot: $here/.venv is missing: run 'make test' (or 'make run') in $here first" >&2
  exit 2
fi
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
exec "$here/.venv/bin/python" -m pipeline run "$@"
