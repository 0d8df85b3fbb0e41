"""What the browser tests share: a formloom app on SQLite in a temporary folder, served by
uvicorn in a thread on a free local port, and screenshots for the docs.

Each test module builds the app it needs (:func:`browser_app`, then publishes its
metadata) and serves it for the module with :func:`serving`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from formloom.platform.app import build_app
from formloom.platform.settings import Settings

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def browser_app(tmp_path_factory: pytest.TempPathFactory, name: str) -> FastAPI:
    """A fresh app over an SQLite workspace in a temporary folder (no job worker)."""
    folder = tmp_path_factory.mktemp(name)
    settings = Settings(
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'formloom.db'}",
        namespace="browser",
        password_hashing="fast",
    )
    return build_app(settings, run_worker=False)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free local port while the block runs; its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True, name="browser-test-server")
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


def shoot(page: Any, name: str) -> None:
    """A full-page screenshot to ``docs/screenshots/<name>.png`` (referenced from the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
