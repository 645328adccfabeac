"""prometheus-client's multiprocess mode for `rewards serve --workers N` (no prometheus import here).

Every worker process keeps its own counters; with PROMETHEUS_MULTIPROC_DIR set before a worker imports
prometheus-client, each writes them to memory-mapped files in that folder, and whichever worker answers /metrics
adds up every worker's files. `rewards serve` with more than one worker sets the variable to a fresh folder (unless
the operator set one: then emptying it before each start is theirs to do) and removes its own folder at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> str | None:
    """The folder prometheus-client shares counters through, when this process runs in multiprocess mode."""
    # prometheus-client's own variable, read by the library itself at import; the app must agree with it
    return os.environ.get(MULTIPROC_ENV) or None


@contextmanager
def multiprocess_metrics(workers: int) -> Iterator[str | None]:
    """Around a server start: with several workers, a fresh shared metrics folder (yielded); else nothing."""
    if workers <= 1 or multiproc_dir() is not None:
        yield multiproc_dir()
        return
    folder = tempfile.mkdtemp(prefix="rewards-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # inherited by the worker processes uvicorn spawns
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
