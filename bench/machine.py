"""Facts about the machine and the software a benchmark ran on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text


def machine_facts() -> dict[str, Any]:
    """CPU, memory, OS and library versions of this process."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "load_average": load_average(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": metadata.version("sqlalchemy"),
        "alembic": metadata.version("alembic"),
        "psycopg": metadata.version("psycopg"),
        "pydantic": metadata.version("pydantic"),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


class CpuMeter:
    """How busy all CPUs were between ``start`` and ``stop``, and how much of it was us.

    ``others`` is everything else: the PostgreSQL server (which the PostgreSQL
    benchmark itself keeps busy) and any unrelated work that skews the timings.
    """

    def __init__(self) -> None:
        self._busy = self._total = self._iowait = self._own = 0.0

    def start(self) -> None:
        self._busy, self._iowait, self._total = _cpu_jiffies()
        self._own = time.process_time()

    def stop(self) -> dict[str, float]:
        busy, iowait, total = _cpu_jiffies()
        own = time.process_time() - self._own
        span = total - self._total
        if span <= 0:
            return {}
        ticks = os.sysconf("SC_CLK_TCK")
        machine = (busy - self._busy) / span
        mine = own * ticks / span
        return {
            "machine_busy": round(machine, 3),
            "this_process": round(mine, 3),
            "others": round(max(machine - mine, 0.0), 3),
            "iowait": round((iowait - self._iowait) / span, 3),
        }


def wait_until_quiet(
    limit_seconds: float, log: Callable[[str], None], *, busy_below: float = 0.1
) -> bool:
    """Wait (up to ``limit_seconds``) for a 3-second window with all CPUs under ``busy_below``."""
    deadline = time.monotonic() + limit_seconds
    meter = CpuMeter()
    reported = False
    while True:
        meter.start()
        time.sleep(3)
        busy = meter.stop().get("machine_busy", 0.0)
        if busy < busy_below:
            return True
        if time.monotonic() >= deadline:
            log(f"the machine is still {busy:.0%} busy; measuring anyway")
            return False
        if not reported:
            log(f"the machine is {busy:.0%} busy with other work; waiting for it to calm down")
            reported = True


def _cpu_jiffies() -> tuple[float, float, float]:
    """(busy, iowait, total) jiffies of all CPUs since boot; zeros without /proc/stat."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0, 0.0
    idle, iowait = fields[3], fields[4]
    total = sum(fields[:8])
    return total - idle - iowait, iowait, total


def code_facts(repo: Path) -> dict[str, Any]:
    """The commit measured and how many files outside bench/ and docs/ differ from it."""
    try:
        commit = _git(repo, "rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:]
            for line in _git(repo, "status", "--porcelain").splitlines()
            if not line[3:].startswith(("bench/", "docs/"))
        ]
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "uncommitted": []}
    return {"commit": commit, "uncommitted": changed}


def _git(repo: Path, *args: str) -> str:
    found = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return found.stdout


def postgres_facts(url: str) -> dict[str, Any]:
    """Server version and the settings that decide what a commit costs."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            facts: dict[str, Any] = {
                "postgresql": conn.execute(text("SHOW server_version")).scalar_one(),
            }
            for setting in ("fsync", "synchronous_commit", "shared_buffers", "wal_level"):
                facts[setting] = conn.execute(text(f"SHOW {setting}")).scalar_one()
    finally:
        engine.dispose()
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None
