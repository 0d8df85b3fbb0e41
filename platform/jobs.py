"""Durable jobs: a transactional outbox per environment, the job type registry, admin.

A job is a row of the environment's ``fl_job`` table. :func:`enqueue` writes it on
the caller's connection, inside the transaction of the change that causes the
job, so a committed change never loses its job and a rolled-back change never
runs it. Workers (:mod:`formloom.platform.worker`) claim due jobs, run the
registered :class:`JobType` and record the outcome.

Job states::

    queued ──claim──▶ running ──success──▶ done
      ▲                │ │
      │                │ └──success, repeating──▶ queued (next run_at, attempts 0)
      ├──error, attempts left (run_at = now + backoff)──┘
      │                └──error, no attempts left──▶ failed
      └──────────────────────────── retry_job ◀────────┘

    running, lease expired (its worker died) ──claim──▶ running (next attempt)

No queue library fits our rules: procrastinate is PostgreSQL-only, huey, dramatiq
and Celery keep jobs in their own storage, outside the transaction (and the
environment namespace) of the change that causes them.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.dialects import postgresql, sqlite

from formloom.engine.errors import Issue
from formloom.engine.registry import Registry
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment
from formloom.platform.errors import Conflict, Invalid, NotFound, PlatformError
from formloom.platform.tables import job

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED)

DEFAULT_MAX_ATTEMPTS = 8
MAX_LIST_LIMIT = 1000

#: Writes a progress report of the running job: ``(done, total, message)``.
ProgressWriter = Callable[[int, int, str], None]


class LeaseLost(PlatformError):
    """The worker no longer owns the job: its lease expired and another worker took it over.

    Raised by :meth:`JobContext.report_progress` so that a handler stops early;
    the other worker runs the job again (which is safe, handlers being idempotent).
    """

    status = 409
    code = "lease_lost"


class JobContext:
    """What a running job knows about itself: where it runs, which job and which attempt."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        env: str,
        job_id: int,
        attempt: int,
        max_attempts: int,
        progress_writer: ProgressWriter,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.workspace = workspace
        self.env = env
        self.job_id = job_id
        #: 1 on the first attempt; a retry or a takeover from a dead worker counts up.
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._progress_writer = progress_writer
        self._clock = clock

    def now(self) -> datetime:
        """The current time as the worker sees it (tests run workers on a fake clock)."""
        return self._clock() if self._clock is not None else datetime.now(UTC)

    def report_progress(self, done: int, total: int, message: str = "") -> None:
        """Record how far the job got (``done`` of ``total``), readable through :func:`get_job`.

        Writes in its own short transaction, so the report is visible at once, and
        renews the worker's lease on the job. Call it outside your own write
        transactions (on SQLite it would wait for the lock your transaction holds).
        Raises :class:`LeaseLost` when another worker has taken the job over.
        """
        if done < 0 or total < 0:
            raise ValueError(f"job {self.job_id}: progress must not be negative ({done}/{total})")
        self._progress_writer(done, total, message)


class JobType(ABC):
    """One kind of background work; subclasses set ``name`` and implement :meth:`run`.

    **Handlers are idempotent.** A job can run more than once: a retry runs it again
    from the start, and when a worker dies (or stalls past its lease) mid-job
    another worker takes the job over. Record the effect together with the job id
    (``ctx.job_id``), in the same transaction as the effect, e.g. an INSERT keyed
    by the job id that ignores duplicates, and skip work that is already recorded.
    Effects outside the database (mail, webhooks) pass the job id on as an
    idempotency key where the receiver supports one.
    """

    name: ClassVar[str]

    @abstractmethod
    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        """Do the work; raising fails this attempt (retried with backoff, then parked)."""


job_types: Registry[JobType] = Registry("job type")


def enqueue(
    conn: Connection,
    *,
    job_type: str,
    payload: dict[str, Any],
    run_at: datetime | None = None,
    repeat_seconds: int | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """Add a job in the caller's transaction and return its id.

    ``conn`` comes from ``workspace.begin(env)``: the job lands in that
    environment and exists only if the transaction commits. ``run_at`` (timezone
    aware; default now) delays the first run; ``repeat_seconds`` makes the job
    come back every so many seconds after each success. ``dedupe_key`` makes
    enqueueing idempotent: when the environment already holds a job with that key
    (in any state), no job is added and the existing job's id is returned.
    """
    problems = _enqueue_problems(job_type, payload, run_at, repeat_seconds, max_attempts)
    if problems:
        raise Invalid(f"cannot enqueue job: {problems[0].message}", issues=problems)
    now = datetime.now(UTC)
    values = {
        "job_type": job_type,
        "payload": payload,
        "status": QUEUED,
        "run_at": run_at or now,
        "max_attempts": max_attempts,
        "repeat_seconds": repeat_seconds,
        "dedupe_key": dedupe_key,
        "created_at": now,
    }
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(job).values(values)
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[job.c.dedupe_key])
    job_id = conn.execute(statement.returning(job.c.id)).scalar_one_or_none()
    if job_id is None:
        job_id = conn.execute(select(job.c.id).where(job.c.dedupe_key == dedupe_key)).scalar_one()
    return int(job_id)


def list_jobs(
    workspace: Workspace, env: str, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The environment's jobs, newest first, optionally only those in ``status``."""
    if status is not None and status not in JOB_STATUSES:
        message = f"unknown job status `{status}`; use one of {', '.join(JOB_STATUSES)}"
        raise Invalid(message, issues=[Issue("/status", "invalid_status", message)])
    if not 1 <= limit <= MAX_LIST_LIMIT:
        message = f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}"
        raise Invalid(message, issues=[Issue("/limit", "invalid_limit", message)])
    require_environment(workspace, env)
    query = select(job).order_by(job.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(job.c.status == status)
    with workspace.begin(env, readonly=True) as conn:
        rows = conn.execute(query).all()
    return [job_as_dict(row, env) for row in rows]


def get_job(workspace: Workspace, env: str, job_id: int) -> dict[str, Any]:
    """One job with its state, last error and progress; :class:`NotFound` if there is none."""
    require_environment(workspace, env)
    with workspace.begin(env, readonly=True) as conn:
        row = conn.execute(select(job).where(job.c.id == job_id)).first()
    if row is None:
        raise _job_not_found(env, job_id)
    return job_as_dict(row, env)


def retry_job(workspace: Workspace, env: str, job_id: int) -> dict[str, Any]:
    """Put a failed (parked) job back in the queue, due now, with its attempts reset.

    Only failed jobs can be retried (:class:`Conflict` otherwise); the last error
    stays visible until the job's next outcome replaces or outlives it.
    """
    require_environment(workspace, env)
    with workspace.begin(env) as conn:
        retried = conn.execute(
            update(job)
            .where(job.c.id == job_id, job.c.status == FAILED)
            .values(
                status=QUEUED,
                attempts=0,
                run_at=datetime.now(UTC),
                finished_at=None,
                locked_by=None,
                locked_until=None,
            )
        ).rowcount
        row = conn.execute(select(job).where(job.c.id == job_id)).first()
    if row is None:
        raise _job_not_found(env, job_id)
    if retried != 1:
        raise Conflict(
            f"job {job_id} in environment `{env}` is {row.status}; only failed jobs can be retried"
        )
    return job_as_dict(row, env)


def job_as_dict(row: Row[Any], env: str) -> dict[str, Any]:
    """A JSON-ready view of a ``fl_job`` row (ISO 8601 timestamps)."""
    return {
        "id": row.id,
        "env": env,
        "job_type": row.job_type,
        "payload": row.payload,
        "status": row.status,
        "run_at": _iso(row.run_at),
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "repeat_seconds": row.repeat_seconds,
        "locked_by": row.locked_by,
        "locked_until": _iso(row.locked_until),
        "last_error": row.last_error,
        "progress": row.progress,
        "dedupe_key": row.dedupe_key,
        "created_at": _iso(row.created_at),
        "finished_at": _iso(row.finished_at),
    }


def _enqueue_problems(
    job_type: str,
    payload: dict[str, Any],
    run_at: datetime | None,
    repeat_seconds: int | None,
    max_attempts: int,
) -> list[Issue]:
    problems = []
    if job_type not in job_types:
        problems.append(Issue("/job_type", "unknown_job_type", job_types.unknown_message(job_type)))
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        problems.append(
            Issue("/payload", "not_json", f"job `{job_type}`: payload is not JSON ({exc})")
        )
    if run_at is not None and run_at.tzinfo is None:
        problems.append(
            Issue(
                "/run_at",
                "naive_datetime",
                f"job `{job_type}`: run_at {run_at.isoformat()} has no time zone; pass an "
                "aware datetime such as datetime.now(UTC)",
            )
        )
    if repeat_seconds is not None and repeat_seconds < 1:
        problems.append(
            Issue(
                "/repeat_seconds",
                "invalid_repeat",
                f"job `{job_type}`: repeat_seconds must be at least 1, got {repeat_seconds}",
            )
        )
    if max_attempts < 1:
        problems.append(
            Issue(
                "/max_attempts",
                "invalid_max_attempts",
                f"job `{job_type}`: max_attempts must be at least 1, got {max_attempts}",
            )
        )
    return problems


def _job_not_found(env: str, job_id: int) -> NotFound:
    return NotFound(
        f"job {job_id} does not exist in environment `{env}`; check the id against the "
        "environment's job list"
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
