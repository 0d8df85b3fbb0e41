"""Workers: claim due jobs in every environment, run them, record the outcome.

Any number of workers, in any number of processes and machines, can serve one
workspace; all coordination goes through the ``fl_job`` rows:

- **Claiming** happens in a short transaction. PostgreSQL picks a due row with
  ``SELECT … FOR UPDATE SKIP LOCKED`` (concurrent claimers skip it instead of
  waiting); SQLite's ``BEGIN IMMEDIATE`` already admits one writer at a time.
  Both then mark the row ``running`` with a conditional UPDATE that sets
  ``locked_by`` (the worker), a lease ``locked_until`` and the attempt number.
- **The lease** is renewed while the handler runs (a background thread, and
  every progress report). A worker that dies stops renewing; once its lease has
  expired the job is due again and the next claim takes it over as a new
  attempt (the last attempt of a job that died is parked as failed instead).
- **Recording the outcome** is an UPDATE guarded by the claim (job id,
  ``locked_by``, attempt number and ``run_at``); a worker whose job was taken
  over changes nothing.

A handler runs outside the claim transaction and opens its own transactions
(:class:`~formloom.platform.jobs.JobType` explains why it must be idempotent).
Lease expiry compares timestamps written by different machines: keep their
clocks synchronised (NTP) and the lease well above any clock skew.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError, StatementError

from formloom.engine.errors import RegistryError
from formloom.platform.database import Workspace
from formloom.platform.environments import list_environments
from formloom.platform.jobs import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    JobContext,
    LeaseLost,
    job_types,
)
from formloom.platform.tables import job

logger = logging.getLogger(__name__)

#: Returns the current time, timezone aware; tests pass a fake clock.
Clock = Callable[[], datetime]

MAX_ERROR_CHARS = 2000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff after a failed attempt: ``base_seconds * 2**(attempt - 1)``, capped."""

    base_seconds: float = 2.0
    max_seconds: float = 3600.0

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number ``attempt`` (1 = the first)."""
        exponent = min(attempt - 1, 62)
        return timedelta(seconds=min(self.base_seconds * 2**exponent, self.max_seconds))


@dataclass(frozen=True)
class Claim:
    """A job this worker has claimed: the row's identity and what the handler needs."""

    env: str
    job_id: int
    job_type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    run_at: datetime
    repeat_seconds: int | None


#: The modules that register the platform's own job types when imported.
PLATFORM_JOB_MODULES = (
    "formloom.platform.formula_jobs",
    "formloom.platform.record_import",
    "formloom.platform.flow_actions",
    "formloom.platform.flow_timers",
    "formloom.platform.orphan_files",
)


def load_platform_job_types() -> None:
    """Import every module that registers a job type, so that a worker started on its
    own (``formloom worker``) knows them all, not only those its entry point imported."""
    for module in PLATFORM_JOB_MODULES:
        importlib.import_module(module)


class Worker:
    """Runs due jobs of every environment of a workspace.

    ``lease_seconds`` is how long a claim stays valid without renewal: a job whose
    worker died is taken over at most that long after the death. The lease is
    renewed every third of it while the handler runs.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        worker_id: str | None = None,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.workspace = workspace
        self.worker_id = worker_id or default_worker_id()
        self.poll_interval = poll_interval
        self.lease = timedelta(seconds=lease_seconds)
        self.retry = retry or RetryPolicy()
        self.clock = clock
        load_platform_job_types()
        self._stop_event: threading.Event | None = None

    # -- running -----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Run the jobs due now in every environment; return how many ran.

        Environments take turns one job at a time, so a busy one does not starve
        the others. Only jobs due when the pass starts run: a job that fails or
        repeats within the pass waits for the next one.
        """
        cutoff = self.clock()
        pending = [info.name for info in list_environments(self.workspace)]
        ran = 0
        while pending and not self._stopping():
            still_pending = []
            for env in pending:
                if self._stopping():
                    break
                try:
                    claim = self._claim(env, cutoff)
                except SQLAlchemyError:
                    logger.exception("worker %s: cannot claim jobs in `%s`", self.worker_id, env)
                    continue
                if claim is not None:
                    self._run(claim)
                    ran += 1
                    still_pending.append(env)
            pending = still_pending
        return ran

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run passes until ``stop_event`` is set, sleeping ``poll_interval`` when idle.

        A running job finishes before the worker stops. A pass that fails (the
        database is unreachable) is logged and tried again after ``poll_interval``.
        """
        self._stop_event = stop_event
        logger.info("worker %s started", self.worker_id)
        try:
            while not stop_event.is_set():
                try:
                    ran = self.run_once()
                except Exception:
                    logger.exception("worker %s: pass failed", self.worker_id)
                    ran = 0
                if ran == 0:
                    stop_event.wait(self.poll_interval)
        finally:
            self._stop_event = None
            logger.info("worker %s stopped", self.worker_id)

    def _stopping(self) -> bool:
        return self._stop_event is not None and self._stop_event.is_set()

    # -- claiming ----------------------------------------------------------------------------

    def _claim(self, env: str, cutoff: datetime) -> Claim | None:
        """Claim the environment's next job due at ``cutoff``, or return None."""
        due = or_(
            and_(job.c.status == QUEUED, job.c.run_at <= cutoff),
            and_(job.c.status == RUNNING, job.c.locked_until < cutoff),
        )
        query = select(job).where(due).order_by(job.c.run_at, job.c.id).limit(1)
        if not self.workspace.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        with self.workspace.begin(env) as conn:
            while (row := conn.execute(query).first()) is not None:
                now = self.clock()
                if row.status == RUNNING:
                    last_attempt = row.attempts >= row.max_attempts
                    logger.warning(
                        "job %s in `%s`: the lease of worker %s expired at %s; %s",
                        row.id,
                        env,
                        row.locked_by,
                        row.locked_until.isoformat(),
                        "parking it as failed" if last_attempt else "taking it over",
                    )
                    if last_attempt:
                        conn.execute(
                            update(job)
                            .where(job.c.id == row.id, due)
                            .values(
                                status=FAILED,
                                finished_at=now,
                                locked_by=None,
                                locked_until=None,
                                last_error=(
                                    f"worker {row.locked_by} stopped during attempt "
                                    f"{row.attempts} of {row.max_attempts} (its lease expired)"
                                ),
                            )
                        )
                        continue
                claimed = conn.execute(
                    update(job)
                    .where(job.c.id == row.id, due)
                    .values(
                        status=RUNNING,
                        locked_by=self.worker_id,
                        locked_until=now + self.lease,
                        attempts=row.attempts + 1,
                        progress=None,
                    )
                ).rowcount
                if claimed == 1:
                    return Claim(
                        env=env,
                        job_id=row.id,
                        job_type=row.job_type,
                        payload=row.payload,
                        attempt=row.attempts + 1,
                        max_attempts=row.max_attempts,
                        run_at=row.run_at,
                        repeat_seconds=row.repeat_seconds,
                    )
        return None

    def _owned(self, claim: Claim) -> ColumnElement[bool]:
        """The row as this worker claimed it.

        Every claim increases ``attempts``, and a repeating job (whose attempts
        restart at 0) moves ``run_at`` forward, so attempts and run_at together tell
        this claim from any later claim of the same job, even by a worker with the
        same id.
        """
        return and_(
            job.c.id == claim.job_id,
            job.c.status == RUNNING,
            job.c.locked_by == self.worker_id,
            job.c.attempts == claim.attempt,
            job.c.run_at == claim.run_at,
        )

    def _renew(self, claim: Claim, *, progress: dict[str, Any] | None = None) -> bool:
        """Extend the lease (and record progress); False when the job is no longer ours."""
        values: dict[str, Any] = {"locked_until": self.clock() + self.lease}
        if progress is not None:
            values["progress"] = progress
        with self.workspace.begin(claim.env) as conn:
            return conn.execute(update(job).where(self._owned(claim)).values(values)).rowcount == 1

    # -- running a claimed job ---------------------------------------------------------------

    def _run(self, claim: Claim) -> None:
        def write_progress(done: int, total: int, message: str) -> None:
            progress = {
                "done": done,
                "total": total,
                "message": message,
                "updated_at": self.clock().isoformat(),
            }
            if not self._renew(claim, progress=progress):
                raise LeaseLost(
                    f"job {claim.job_id} in environment `{claim.env}`: worker {self.worker_id} "
                    "lost its lease and another worker took the job over"
                )

        ctx = JobContext(
            workspace=self.workspace,
            env=claim.env,
            job_id=claim.job_id,
            attempt=claim.attempt,
            max_attempts=claim.max_attempts,
            progress_writer=write_progress,
            clock=self.clock,
        )
        logger.info(
            "worker %s: running job %s (%s) in `%s`, attempt %s of %s",
            self.worker_id,
            claim.job_id,
            claim.job_type,
            claim.env,
            claim.attempt,
            claim.max_attempts,
        )
        error: Exception | None = None
        with self._lease_kept(claim):
            try:
                job_types.get(claim.job_type).run(ctx, claim.payload)
            except LeaseLost as exc:
                logger.warning("%s", exc)
                return
            except RegistryError as exc:
                logger.error("job %s in `%s`: %s", claim.job_id, claim.env, exc)
                error = exc
            except Exception as exc:
                logger.exception(
                    "job %s (%s) in `%s` failed", claim.job_id, claim.job_type, claim.env
                )
                error = exc
        if error is None:
            self._succeed(claim)
        else:
            self._fail(claim, error)

    @contextmanager
    def _lease_kept(self, claim: Claim) -> Iterator[None]:
        """Renew the claim's lease in a background thread while the block runs."""
        stop = threading.Event()
        interval = self.lease.total_seconds() / 3

        def keep() -> None:
            while not stop.wait(interval):
                try:
                    if not self._renew(claim):
                        logger.warning(
                            "job %s in `%s`: worker %s lost its lease; another worker took over",
                            claim.job_id,
                            claim.env,
                            self.worker_id,
                        )
                        return
                except Exception:
                    logger.exception(
                        "job %s in `%s`: cannot renew the lease", claim.job_id, claim.env
                    )

        keeper = threading.Thread(target=keep, name=f"lease-{claim.job_id}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()

    def _succeed(self, claim: Claim) -> None:
        now = self.clock()
        values: dict[str, Any] = {"locked_by": None, "locked_until": None, "finished_at": now}
        if claim.repeat_seconds is None:
            values["status"] = DONE
        else:
            values.update(
                status=QUEUED,
                run_at=next_run(claim.run_at, claim.repeat_seconds, now),
                attempts=0,
                last_error=None,
            )
        self._record(claim, values, outcome="success")

    def _fail(self, claim: Claim, error: Exception) -> None:
        now = self.clock()
        values: dict[str, Any] = {
            "locked_by": None,
            "locked_until": None,
            "last_error": describe_error(error),
        }
        if claim.attempt >= claim.max_attempts:
            values.update(status=FAILED, finished_at=now)
            logger.error(
                "job %s (%s) in `%s` failed %s times; parked as failed",
                claim.job_id,
                claim.job_type,
                claim.env,
                claim.attempt,
            )
        else:
            values.update(status=QUEUED, run_at=now + self.retry.delay(claim.attempt))
        self._record(claim, values, outcome="failure")

    def _record(self, claim: Claim, values: dict[str, Any], *, outcome: str) -> None:
        with self.workspace.begin(claim.env) as conn:
            recorded = conn.execute(update(job).where(self._owned(claim)).values(values)).rowcount
        if recorded != 1:
            logger.warning(
                "job %s in `%s`: worker %s lost its lease; the %s of attempt %s is not recorded",
                claim.job_id,
                claim.env,
                self.worker_id,
                outcome,
                claim.attempt,
            )


def default_worker_id() -> str:
    """``host:pid:random``: unique per Worker, and says where the worker runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def next_run(scheduled: datetime, every_seconds: int, now: datetime) -> datetime:
    """The first slot ``scheduled + k * every_seconds`` (k ≥ 1) later than ``now``.

    Slots missed while no worker ran are skipped, not caught up.
    """
    step = timedelta(seconds=every_seconds)
    missed = max(0, math.floor((now - scheduled) / step))
    return scheduled + (missed + 1) * step


def describe_error(error: Exception) -> str:
    """The error's type and message for ``last_error``; SQL text and parameters are left out."""
    cause: BaseException = error
    if isinstance(error, StatementError) and error.orig is not None:
        cause = error.orig
    return f"{type(cause).__name__}: {cause}"[:MAX_ERROR_CHARS]
