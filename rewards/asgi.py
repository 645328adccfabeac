"""ASGI entry for uvicorn workers: builds the container from the environment in each worker."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.config import load_settings
from rewards.logs import install_access_log_redaction


def freeze_startup_objects() -> None:
    """Move every object alive after start-up (modules, routes, models, the container) out of the collector's
    reach: they live as long as the worker, and a full collection no longer walks them all (it took 90-350 ms of
    GIL in a loaded web worker, 6-35 ms once frozen). The standard start-up step of a long-lived CPython service."""
    gc.collect()
    gc.freeze()


def app_factory() -> FastAPI:
    """Build the app for one worker process."""
    install_access_log_redaction()  # each worker: no query secrets or openids in uvicorn's access log
    container = bootstrap(load_settings())
    container.prepare()
    container.start_projector()  # every worker keeps the boards in line with the ledger, no command needed
    app = create_app(container)
    freeze_startup_objects()
    return app
