"""A job type that records its effect idempotently, and a worker process that runs it.

The SIGKILL test starts ``python -m tests.platform.job_worker DATA_DIR DATABASE_URL
NAMESPACE WORKER_ID LEASE_SECONDS`` from the repository root, kills it mid-job and
lets a second worker finish the job. Importing this module registers nothing;
:func:`main` registers :class:`RecordEffect` in the worker process, tests do it
inside ``job_types.restored_after()``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from formloom.platform.database import Workspace
from formloom.platform.jobs import JobContext, JobType, job_types
from formloom.platform.settings import Settings
from formloom.platform.tables import ENV
from formloom.platform.worker import Worker

effect_metadata = MetaData()

#: One row per job whose effect happened: the job id is the key, so a rerun adds nothing.
job_effect = Table(
    "t_job_effect",
    effect_metadata,
    Column("job_id", Integer, primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("note", String(100), nullable=False, server_default=""),
    schema=ENV,
)


def create_effect_table(workspace: Workspace, env: str) -> None:
    with workspace.begin(env) as conn:
        effect_metadata.create_all(conn)


def record_effect(conn: Connection, *, job_id: int, attempt: int, note: str = "") -> None:
    """Insert the job's effect row unless it is already there (the idempotency record)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        dialect_insert(job_effect)
        .values(job_id=job_id, attempt=attempt, note=note)
        .on_conflict_do_nothing(index_elements=[job_effect.c.job_id])
    )


def effects(workspace: Workspace, env: str) -> list[dict[str, Any]]:
    with workspace.begin(env, readonly=True) as conn:
        rows = conn.execute(select(job_effect).order_by(job_effect.c.job_id)).mappings().all()
    return [dict(row) for row in rows]


class RecordEffect(JobType):
    """Records its effect, then pauses on its first attempt (long enough to be killed)."""

    name = "test_record_effect"

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        with ctx.workspace.begin(ctx.env) as conn:
            record_effect(conn, job_id=ctx.job_id, attempt=ctx.attempt)
        if ctx.attempt == 1:
            time.sleep(float(payload.get("pause_seconds", 0)))


def main(argv: list[str]) -> None:
    data_dir, database_url, namespace, worker_id, lease_seconds = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    workspace = Workspace(Settings(Path(data_dir), database_url, namespace))
    job_types.register(RecordEffect())
    worker = Worker(
        workspace, worker_id=worker_id, poll_interval=0.05, lease_seconds=float(lease_seconds)
    )
    worker.run_forever(threading.Event())


if __name__ == "__main__":
    main(sys.argv[1:])
