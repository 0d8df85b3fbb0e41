"""Durable jobs: transactional enqueue, claiming, retries, timers, progress, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION, create_environment
from formloom.platform.errors import Conflict, Invalid, NotFound
from formloom.platform.jobs import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    JobContext,
    JobType,
    enqueue,
    get_job,
    job_types,
    list_jobs,
    retry_job,
)
from formloom.platform.settings import Settings
from formloom.platform.tables import job
from formloom.platform.worker import RetryPolicy, Worker
from tests.platform.job_worker import (
    RecordEffect,
    create_effect_table,
    effects,
    job_effect,
    record_effect,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Note(JobType):
    """Records its effect (idempotently) and remembers every run in memory."""

    name = "test_note"

    def __init__(self) -> None:
        self.runs: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        with self.lock:
            self.runs.append((ctx.job_id, ctx.attempt))
        with ctx.workspace.begin(ctx.env) as conn:
            record_effect(conn, job_id=ctx.job_id, attempt=ctx.attempt, note=payload["note"])


class Flaky(JobType):
    """Fails while ``failing`` is true."""

    name = "test_flaky"

    def __init__(self) -> None:
        self.failing = True
        self.attempts: list[int] = []

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        self.attempts.append(ctx.attempt)
        if self.failing:
            raise RuntimeError(f"the mail server refused message {payload['message']}")


class Call(JobType):
    """Runs a callable the test hands over (by the job's payload key)."""

    name = "test_call"

    def __init__(self) -> None:
        self.calls: dict[str, Callable[[JobContext], None]] = {}

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        self.calls[payload["call"]](ctx)


@pytest.fixture
def note(workspace: Workspace) -> Iterator[Note]:
    create_effect_table(workspace, PRODUCTION)
    with job_types.restored_after():
        note = Note()
        job_types.register(note)
        yield note


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    with job_types.restored_after():
        flaky = Flaky()
        job_types.register(flaky)
        yield flaky


@pytest.fixture
def call() -> Iterator[Call]:
    with job_types.restored_after():
        call = Call()
        job_types.register(call)
        yield call


def add_job(workspace: Workspace, env: str = PRODUCTION, **options: Any) -> int:
    with workspace.begin(env) as conn:
        return enqueue(conn, **options)


# -- the outbox: a job commits or rolls back with its change ---------------------------------


def test_a_job_enqueued_with_a_committed_change_runs(workspace: Workspace, note: Note) -> None:
    # given: a change and its job committed together
    with workspace.begin(PRODUCTION) as conn:
        conn.execute(job_effect.insert().values(job_id=1000, attempt=0, note="the change"))
        job_id = enqueue(conn, job_type="test_note", payload={"note": "follow-up"})

    # when
    ran = Worker(workspace, worker_id="w1").run_once()

    # then
    assert ran == 1
    assert note.runs == [(job_id, 1)]
    assert [e["note"] for e in effects(workspace, PRODUCTION)] == ["follow-up", "the change"]
    done = get_job(workspace, PRODUCTION, job_id)
    assert done["status"] == DONE
    assert done["attempts"] == 1
    assert done["locked_by"] is None
    assert done["finished_at"] is not None


def test_a_job_enqueued_with_a_rolled_back_change_never_runs(
    workspace: Workspace, note: Note
) -> None:
    # given: the change fails after its job was enqueued
    with pytest.raises(ZeroDivisionError), workspace.begin(PRODUCTION) as conn:
        conn.execute(job_effect.insert().values(job_id=1000, attempt=0, note="the change"))
        enqueue(conn, job_type="test_note", payload={"note": "follow-up"})
        _ = 1 / 0

    # when
    ran = Worker(workspace, worker_id="w1").run_once()

    # then
    assert ran == 0
    assert note.runs == []
    assert list_jobs(workspace, PRODUCTION) == []
    assert effects(workspace, PRODUCTION) == []


def test_enqueue_refuses_unknown_job_types_and_bad_options(
    workspace: Workspace, note: Note
) -> None:
    with pytest.raises(Invalid) as caught, workspace.begin(PRODUCTION) as conn:
        enqueue(
            conn,
            job_type="test_nte",
            payload={"when": datetime.now(UTC)},
            run_at=datetime(2030, 1, 1),  # naive: the mistake under test
            repeat_seconds=0,
            max_attempts=0,
        )

    codes = [issue.code for issue in caught.value.issues]
    assert codes == [
        "unknown_job_type",
        "not_json",
        "naive_datetime",
        "invalid_repeat",
        "invalid_max_attempts",
    ]
    assert "did you mean `test_note`?" in caught.value.issues[0].message


def test_a_dedupe_key_makes_enqueue_idempotent(workspace: Workspace, note: Note) -> None:
    first = add_job(workspace, job_type="test_note", payload={"note": "a"}, dedupe_key="deal:7")
    again = add_job(workspace, job_type="test_note", payload={"note": "b"}, dedupe_key="deal:7")
    other = add_job(workspace, job_type="test_note", payload={"note": "c"}, dedupe_key="deal:8")

    assert again == first
    assert other != first
    assert len(list_jobs(workspace, PRODUCTION)) == 2


def test_jobs_of_every_environment_run(workspace: Workspace, note: Note) -> None:
    # given: a job in production and one in a sandbox
    create_environment(workspace, "sandbox")
    create_effect_table(workspace, "sandbox")
    in_production = add_job(workspace, job_type="test_note", payload={"note": "p"})
    in_sandbox = add_job(workspace, "sandbox", job_type="test_note", payload={"note": "s"})

    # when
    ran = Worker(workspace, worker_id="w1").run_once()

    # then: each ran in its own environment
    assert ran == 2
    assert [e["note"] for e in effects(workspace, PRODUCTION)] == ["p"]
    assert [e["note"] for e in effects(workspace, "sandbox")] == ["s"]
    assert get_job(workspace, PRODUCTION, in_production)["status"] == DONE
    assert get_job(workspace, "sandbox", in_sandbox)["status"] == DONE


# -- failures: backoff, parking, retry ------------------------------------------------------


def test_a_failing_job_backs_off_is_parked_and_can_be_retried(
    workspace: Workspace, flaky: Flaky
) -> None:
    # given: a job that fails, a worker with a 10 s backoff capped at 15 s
    job_id = add_job(workspace, job_type="test_flaky", payload={"message": 42}, max_attempts=3)
    clock = FakeClock()
    worker = Worker(
        workspace, worker_id="w1", retry=RetryPolicy(base_seconds=10, max_seconds=15), clock=clock
    )

    # when: the first attempt fails
    assert worker.run_once() == 1

    # then: it waits 10 s and keeps the error
    first = get_job(workspace, PRODUCTION, job_id)
    assert first["status"] == QUEUED
    assert first["attempts"] == 1
    assert first["run_at"] == (clock.now + timedelta(seconds=10)).isoformat()
    assert first["last_error"] == "RuntimeError: the mail server refused message 42"
    assert worker.run_once() == 0

    # when: the second attempt fails, the wait doubles up to the 15 s cap
    clock.advance(10)
    assert worker.run_once() == 1
    second = get_job(workspace, PRODUCTION, job_id)
    assert second["attempts"] == 2
    assert second["run_at"] == (clock.now + timedelta(seconds=15)).isoformat()

    # when: the last attempt fails, the job is parked
    clock.advance(15)
    assert worker.run_once() == 1
    parked = get_job(workspace, PRODUCTION, job_id)
    assert parked["status"] == FAILED
    assert parked["attempts"] == 3
    assert parked["finished_at"] == clock.now.isoformat()
    clock.advance(3600)
    assert worker.run_once() == 0
    assert [j["id"] for j in list_jobs(workspace, PRODUCTION, status=FAILED)] == [job_id]

    # when: the cause is fixed and an admin retries the job
    flaky.failing = False
    retried = retry_job(workspace, PRODUCTION, job_id)

    # then
    assert retried["status"] == QUEUED
    assert retried["attempts"] == 0
    assert worker.run_once() == 1
    assert get_job(workspace, PRODUCTION, job_id)["status"] == DONE
    assert flaky.attempts == [1, 2, 3, 1]


def test_only_failed_jobs_can_be_retried(workspace: Workspace, note: Note) -> None:
    job_id = add_job(workspace, job_type="test_note", payload={"note": "n"})

    with pytest.raises(Conflict) as caught:
        retry_job(workspace, PRODUCTION, job_id)

    assert caught.value.message == (
        f"job {job_id} in environment `production` is queued; only failed jobs can be retried"
    )


def test_unknown_jobs_and_environments_are_not_found(workspace: Workspace) -> None:
    with pytest.raises(NotFound) as job_missing:
        get_job(workspace, PRODUCTION, 404)
    with pytest.raises(NotFound) as retry_missing:
        retry_job(workspace, PRODUCTION, 404)
    with pytest.raises(NotFound) as env_missing:
        list_jobs(workspace, "nowhere")
    with pytest.raises(Invalid):
        list_jobs(workspace, PRODUCTION, status="stuck")

    assert "job 404 does not exist in environment `production`" in job_missing.value.message
    assert "job 404 does not exist in environment `production`" in retry_missing.value.message
    assert "environment `nowhere` does not exist" in env_missing.value.message


def test_a_job_whose_type_the_worker_does_not_know_fails_loudly(workspace: Workspace) -> None:
    # given: a job of a type that this worker process has not registered
    with job_types.restored_after():
        job_types.register(Flaky())
        job_id = add_job(workspace, job_type="test_flaky", payload={}, max_attempts=1)

    # when
    assert Worker(workspace, worker_id="w1").run_once() == 1

    # then
    failed = get_job(workspace, PRODUCTION, job_id)
    assert failed["status"] == FAILED
    assert failed["last_error"].startswith("RegistryError: unknown job type `test_flaky`")


# -- timers ---------------------------------------------------------------------------------


def test_a_timer_does_not_run_before_it_is_due(workspace: Workspace, note: Note) -> None:
    clock = FakeClock()
    worker = Worker(workspace, worker_id="w1", clock=clock)
    job_id = add_job(
        workspace,
        job_type="test_note",
        payload={"note": "reminder"},
        run_at=clock.now + timedelta(hours=1),
    )

    assert worker.run_once() == 0
    clock.advance(3599)
    assert worker.run_once() == 0
    assert note.runs == []

    clock.advance(1)
    assert worker.run_once() == 1
    assert note.runs == [(job_id, 1)]


def test_a_repeating_job_is_rescheduled(workspace: Workspace, call: Call) -> None:
    # given: a job every 60 s from t0, and a first run that fails once
    clock = FakeClock()
    t0 = clock.now
    worker = Worker(workspace, worker_id="w1", clock=clock)
    outcomes = iter([RuntimeError("flaky"), None, None])

    def tick(ctx: JobContext) -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    call.calls["tick"] = tick
    job_id = add_job(
        workspace, job_type="test_call", payload={"call": "tick"}, run_at=t0, repeat_seconds=60
    )

    # when: the retry succeeds
    assert worker.run_once() == 1
    clock.advance(2)
    assert worker.run_once() == 1

    # then: back in the queue for the next slot, attempts and error reset
    rescheduled = get_job(workspace, PRODUCTION, job_id)
    assert rescheduled["status"] == QUEUED
    assert rescheduled["attempts"] == 0
    assert rescheduled["last_error"] is None
    assert rescheduled["run_at"] == (t0 + timedelta(seconds=2 + 60)).isoformat()
    clock.advance(59)
    assert worker.run_once() == 0

    # when: no worker ran for ten minutes, missed slots are skipped
    clock.advance(600)
    assert worker.run_once() == 1

    # then
    later = get_job(workspace, PRODUCTION, job_id)
    assert later["run_at"] == (t0 + timedelta(seconds=2 + 11 * 60)).isoformat()


# -- progress -------------------------------------------------------------------------------


def test_progress_is_readable_while_a_job_runs(workspace: Workspace, call: Call) -> None:
    # given: a job that reports progress, then waits for the test
    reported = threading.Event()
    release = threading.Event()

    def import_rows(ctx: JobContext) -> None:
        ctx.report_progress(3, 10, "imported 3 of 10 rows")
        reported.set()
        assert release.wait(5)
        ctx.report_progress(10, 10, "done")

    call.calls["import"] = import_rows
    job_id = add_job(workspace, job_type="test_call", payload={"call": "import"})
    runner = threading.Thread(target=Worker(workspace, worker_id="w1").run_once)
    runner.start()

    # when: the job is half way
    try:
        assert reported.wait(5)
        running = get_job(workspace, PRODUCTION, job_id)
    finally:
        release.set()
        runner.join(5)

    # then
    assert running["status"] == RUNNING
    assert running["locked_by"] == "w1"
    assert {k: running["progress"][k] for k in ("done", "total", "message")} == {
        "done": 3,
        "total": 10,
        "message": "imported 3 of 10 rows",
    }
    finished = get_job(workspace, PRODUCTION, job_id)
    assert finished["status"] == DONE
    assert finished["progress"]["done"] == 10


# -- many workers ---------------------------------------------------------------------------


def test_a_second_worker_does_not_take_a_running_job(workspace: Workspace, call: Call) -> None:
    # given: two jobs; while worker 1 runs the first, worker 2 makes a pass
    second_worker = Worker(workspace, worker_id="w2")
    seen_by_w2: list[int] = []

    def first(ctx: JobContext) -> None:
        seen_by_w2.append(second_worker.run_once())

    call.calls["first"] = first
    call.calls["second"] = lambda ctx: None
    first_id = add_job(workspace, job_type="test_call", payload={"call": "first"})
    second_id = add_job(workspace, job_type="test_call", payload={"call": "second"})

    # when
    ran_by_w1 = Worker(workspace, worker_id="w1").run_once()

    # then: w2 ran only the second job, w1 only the first
    assert ran_by_w1 == 1
    assert seen_by_w2 == [1]
    for job_id in (first_id, second_id):
        finished = get_job(workspace, PRODUCTION, job_id)
        assert finished["status"] == DONE
        assert finished["attempts"] == 1


def test_concurrent_workers_run_every_job_exactly_once(workspace: Workspace, note: Note) -> None:
    # given: 40 jobs and two workers in two threads
    count = 40
    with workspace.begin(PRODUCTION) as conn:
        ids = [
            enqueue(conn, job_type="test_note", payload={"note": f"job {n}"}) for n in range(count)
        ]
    stop = threading.Event()
    workers = [Worker(workspace, worker_id=f"w{n}", poll_interval=0.01) for n in (1, 2)]
    threads = [threading.Thread(target=w.run_forever, args=(stop,)) for w in workers]

    # when
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 8
        while len(list_jobs(workspace, PRODUCTION, status=DONE)) < count:
            assert time.monotonic() < deadline, "the workers did not finish in time"
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)

    # then: each job ran once, on its first attempt
    assert sorted(note.runs) == [(job_id, 1) for job_id in ids]
    assert [e["job_id"] for e in effects(workspace, PRODUCTION)] == ids


def test_the_lease_is_renewed_while_a_long_job_runs(workspace: Workspace, call: Call) -> None:
    # given: a job running three times longer than the 0.4 s lease
    other_passes: list[int] = []
    other = Worker(workspace, worker_id="w2", lease_seconds=0.4)

    def long_job(ctx: JobContext) -> None:
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            other_passes.append(other.run_once())
            time.sleep(0.05)

    call.calls["long"] = long_job
    job_id = add_job(workspace, job_type="test_call", payload={"call": "long"})

    # when
    assert Worker(workspace, worker_id="w1", lease_seconds=0.4).run_once() == 1

    # then: the other worker never took the job over
    assert len(other_passes) > 5
    assert set(other_passes) == {0}
    finished = get_job(workspace, PRODUCTION, job_id)
    assert finished["status"] == DONE
    assert finished["attempts"] == 1


def test_a_job_whose_worker_died_on_its_last_attempt_is_parked(
    workspace: Workspace, note: Note
) -> None:
    # given: a job left running by a dead worker, on its last attempt, lease expired
    job_id = add_job(workspace, job_type="test_note", payload={"note": "n"}, max_attempts=2)
    with workspace.begin(PRODUCTION) as conn:
        conn.execute(
            update(job)
            .where(job.c.id == job_id)
            .values(
                status=RUNNING,
                attempts=2,
                locked_by="dead-worker",
                locked_until=datetime.now(UTC) - timedelta(seconds=1),
            )
        )

    # when
    assert Worker(workspace, worker_id="w1").run_once() == 0

    # then
    parked = get_job(workspace, PRODUCTION, job_id)
    assert parked["status"] == FAILED
    assert parked["last_error"] == (
        "worker dead-worker stopped during attempt 2 of 2 (its lease expired)"
    )
    assert note.runs == []


@pytest.mark.slow
def test_a_job_of_a_killed_worker_completes_exactly_once(
    workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    # given: a worker process with a 1 s lease, paused mid-job after recording the effect
    create_effect_table(workspace, PRODUCTION)
    with job_types.restored_after():
        job_types.register(RecordEffect())
        job_id = add_job(workspace, job_type="test_record_effect", payload={"pause_seconds": 60})
        log_path = tmp_path / "worker.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.platform.job_worker",
                    str(settings.data_dir),
                    settings.database_url,
                    settings.namespace,
                    "doomed",
                    "1.0",
                ],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 8
            while not effects(workspace, PRODUCTION):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)

            # when: the worker is killed mid-job
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(5) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert get_job(workspace, PRODUCTION, job_id)["locked_by"] == "doomed"

        # and: another worker runs until the job is done
        rescuer = Worker(workspace, worker_id="rescuer", lease_seconds=1.0)
        deadline = time.monotonic() + 5
        while get_job(workspace, PRODUCTION, job_id)["status"] != DONE:
            assert time.monotonic() < deadline, "the job was not taken over"
            rescuer.run_once()
            time.sleep(0.05)

    # then: the effect happened once, the job is done on its second attempt
    assert effects(workspace, PRODUCTION) == [{"job_id": job_id, "attempt": 1, "note": ""}]
    finished = get_job(workspace, PRODUCTION, job_id)
    assert finished["attempts"] == 2
    assert finished["locked_by"] is None
