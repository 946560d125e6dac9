"""The child process ``_apart.read_apart`` reads a PDF in: ``python -m pipeline.media._read_child
PATH KIND MAX_CHARS SECONDS`` writes one JSON object, the text or why there is none.

Not imported by ``pipeline.media`` (run as a module it would be imported twice).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from pipeline.media._documents import Unreadable, read_document
from pipeline.media._formats import DocumentType

# The child's address space: MemoryError beyond it, the document "too large to read".
MEMORY_BYTES = 1024 * 1024 * 1024


def read(path: str, kind: DocumentType, max_chars: int, seconds: float) -> dict[str, object]:
    """What became of reading ``path``, as JSON: ``text``, ``unreadable``, ``gone`` (the
    file could not be opened) or ``error``."""
    cpu = int(seconds) + 2  # a backstop: the parent kills the child at ``seconds`` of wall time
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    try:
        done = read_document(Path(path), kind, max_chars)
    except Unreadable as exc:
        return {"unreadable": exc.reason, "detail": exc.detail}
    except OSError as exc:
        return {"gone": str(exc)}
    except MemoryError:
        detail = f"over {MEMORY_BYTES // 2**20} MB of memory"
        return {"unreadable": "it is too large to read", "detail": detail}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"text": done.text, "pages": done.pages, "cut": done.cut}


if __name__ == "__main__":
    path, kind, chars, seconds = sys.argv[1:5]
    if kind not in ("pdf", "text"):
        sys.exit(f"not a document type: {kind!r}")
    sys.stdout.write(json.dumps(read(path, kind, int(chars), float(seconds))))  # type: ignore[arg-type]
