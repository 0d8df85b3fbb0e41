"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``FORMLOOM_TEST_POSTGRES_URL`` (default: the local test
database). When it cannot be reached its tests are reported as NOT RUN in the
summary; with ``FORMLOOM_REQUIRE_POSTGRES=1`` (set by CI) they fail instead.
Each test gets its own namespace (PostgreSQL schemas ``t<random>`` and
``t<random>_<env>``) or its own folder (SQLite), removed afterwards.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from formloom.platform.database import Workspace
from formloom.platform.environments import initialise_workspace
from formloom.platform.settings import Settings, normalise_url

PG_URL = normalise_url(
    os.environ.get(
        "FORMLOOM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
)
REQUIRE_PG = os.environ.get("FORMLOOM_REQUIRE_POSTGRES") == "1"
BACKENDS = ("sqlite", "postgresql")
_not_run: list[str] = []


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql":
        problem = postgres_problem()
        if problem:
            message = f"PostgreSQL at {PG_URL} is not reachable ({problem})"
            if REQUIRE_PG:
                pytest.fail(message + " and FORMLOOM_REQUIRE_POSTGRES=1")
            _not_run.append(request.node.nodeid)
            pytest.skip(message)
    return name


def drop_namespace(url: str, namespace: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        schemas = conn.execute(
            text(
                "SELECT schema_name FROM information_schema.schemata "
                "WHERE schema_name = :ns OR schema_name LIKE :prefix"
            ),
            {"ns": namespace, "prefix": namespace + "\\_%"},
        ).scalars()
        for schema in list(schemas):
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    namespace = "t" + uuid.uuid4().hex[:12]
    url = f"sqlite:///{tmp_path / 'formloom.db'}" if backend == "sqlite" else PG_URL
    # Cheap argon2 parameters: tests create many users; production hashing has its own test.
    yield Settings(
        data_dir=tmp_path, database_url=url, namespace=namespace, password_hashing="fast"
    )
    if backend == "postgresql":
        drop_namespace(url, namespace)


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace(settings)
    initialise_workspace(ws)
    yield ws
    ws.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _not_run:
        terminalreporter.section("PostgreSQL tests NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"{len(_not_run)} PostgreSQL test(s) did not run: PostgreSQL at {PG_URL} could not be "
            "reached. Start it or set FORMLOOM_TEST_POSTGRES_URL; CI sets "
            "FORMLOOM_REQUIRE_POSTGRES=1 so that this fails instead.",
            red=True,
            bold=True,
        )
