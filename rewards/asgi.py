"""ASGI entry for uvicorn workers: builds the container from the environment in each worker."""

from __future__ import annotations

from fastapi import FastAPI

from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.config import load_settings
from rewards.logs import install_access_log_redaction


def app_factory() -> FastAPI:
    """Build the app for one worker process."""
    install_access_log_redaction()  # each worker: no query secrets or openids in uvicorn's access log
    container = bootstrap(load_settings())
    container.prepare()
    container.start_projector()  # every worker keeps the boards in line with the ledger, no command needed
    return create_app(container)
