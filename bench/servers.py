"""HTTP servers of the records benchmarks: real uvicorn processes on free local ports.

Both apps run the same way: ``python -m uvicorn <factory> --factory --workers 1``
on 127.0.0.1, access log off, from the repository root, with their database
settings in the environment. One server runs at a time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServerSpec:
    """How to start one app: its uvicorn factory, environment and health path."""

    name: str
    factory: str
    health_path: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunningServer:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_in_s: float

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(spec: ServerSpec, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        spec.factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextmanager
def serve(spec: ServerSpec, *, log_dir: Path) -> Iterator[RunningServer]:
    """Start the server, wait until its health path answers, stop it afterwards."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}-{port}.log"
    began = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command(spec, port),
            cwd=ROOT,
            env={**os.environ, **spec.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base_url + spec.health_path, log_path)
        yield RunningServer(spec, process, base_url, log_path, time.perf_counter() - began)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask uvicorn to shut down (SIGINT), then kill it if it does not within 20 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {process.returncode} before answering; "
                f"its output ({log_path}):\n{log_tail(log_path)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"the server did not answer {url} within {START_TIMEOUT_S:.0f} s; "
        f"its output ({log_path}):\n{log_tail(log_path)}"
    )


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
