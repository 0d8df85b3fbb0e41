"""Races and crashes: exactly one effect per decision, on both databases.

Each race runs real concurrent transactions from threads. On PostgreSQL a
barrier makes both transactions read their task *before* either locks the
instance (the interleaving that breaks a read-then-write engine); SQLite
admits one writer at a time (``BEGIN IMMEDIATE``), so there the threads only
start together. A crash is an exception in the middle of an action: the
transaction rolls back and the instance is at its last consistent state.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from formloom.platform import flow_step, flow_tasks
from formloom.platform.errors import Conflict
from formloom.platform.settings import Settings
from formloom.platform.tables import approval_event, approval_task, approval_token
from tests.platform.flow_world import (
    ENV,
    World,
    approver,
    by_role,
    chain,
    flow,
    make_world,
    node,
    users,
)

ROUNDS = 4
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def race(
    world: World, monkeypatch: pytest.MonkeyPatch, calls: list[Callable[[], Any]]
) -> list[Any]:
    """Run ``calls`` at once in threads; each one's result or exception."""
    barrier = threading.Barrier(len(calls), timeout=10)
    if not world.workspace.is_sqlite:
        real_open_step = flow_tasks.open_step

        def open_step_together(*args: Any, **kwargs: Any) -> Any:
            barrier.wait()  # every transaction has read its task; now they race for the lock
            return real_open_step(*args, **kwargs)

        monkeypatch.setattr(flow_tasks, "open_step", open_step_together)
    start = threading.Barrier(len(calls), timeout=10)
    outcomes: list[Any] = [None] * len(calls)

    def run(k: int) -> None:
        start.wait()
        try:
            outcomes[k] = calls[k]()
        except Exception as exc:
            outcomes[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.undo()
    return outcomes


def approving(world: World, task_id: int, login: str) -> Callable[[], Any]:
    """A call that approves ``task_id`` as ``login``."""
    return functools.partial(world.act, task_id, "approve", login)


def count(world: World, table: Any, *where: Any) -> int:
    with world.workspace.begin(ENV, readonly=True) as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_two_or_sign_approvers_at_once_one_wins_the_other_gets_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.publish(
        chain(
            "either",
            approver("legal", by_role("legal"), mode="or_sign"),
            approver("ceo", by_role("ceo")),
        )
    )
    for _ in range(ROUNDS):
        started = world.submit(world.contract())
        tasks = {login: world.task(login, started["id"]) for login in ("legal1", "legal2")}
        outcomes = race(world, monkeypatch, [approving(world, tasks[x], x) for x in tasks])
        won = [o for o in outcomes if isinstance(o, dict)]
        lost = [o for o in outcomes if isinstance(o, Exception)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], Conflict) and lost[0].status == 409
        after = world.instance(started["id"])
        assert [e["action"] for e in after["timeline"]] == ["submit", "approve"]
        assert len(world.pending("ceo", started["id"])) == 1  # the next step started once


def test_a_double_clicked_approve_has_one_effect(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.publish(
        chain(
            "click",
            approver("ceo", by_role("ceo")),
            approver("fin", by_role("finance"), mode="or_sign"),
        )
    )
    for _ in range(ROUNDS):
        started = world.submit(world.contract())
        task = world.task("ceo", started["id"])
        outcomes = race(world, monkeypatch, [approving(world, task, "ceo")] * 2)
        assert sum(isinstance(o, dict) for o in outcomes) == 1, outcomes
        assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
        assert count(world, approval_task, approval_task.c.instance_id == started["id"]) == 4
        assert (
            count(
                world,
                approval_event,
                approval_event.c.instance_id == started["id"],
                approval_event.c.action == "approve",
            )
            == 1
        )


def test_countersign_approvals_at_once_all_count(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.publish(
        chain(
            "all",
            approver("finance", by_role("finance"), mode="countersign"),
            approver("ceo", by_role("ceo")),
        )
    )
    started = world.submit(world.contract())
    logins = ("fin1", "fin2", "fin3")
    tasks = {login: world.task(login, started["id"]) for login in logins}
    outcomes = race(world, monkeypatch, [approving(world, tasks[x], x) for x in logins])
    assert all(isinstance(o, dict) for o in outcomes), outcomes
    after = world.instance(started["id"])
    assert [s["node_id"] for s in after["current"]] == ["ceo"]
    assert len(world.pending("ceo", started["id"])) == 1


def test_two_branches_reaching_the_join_at_once_pass_it_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    legal1, fin1 = world.ids["legal1"], world.ids["fin1"]
    world.publish(
        flow(
            "both",
            [
                node("split", "parallel_split", branches=["legal", "finance"]),
                approver("legal", users(legal1), next="join"),
                approver("finance", users(fin1), next="join"),
                node("join", "parallel_join", next="ceo"),
                approver("ceo", by_role("ceo"), next="end"),
                node("end", "end", outcome="approved"),
            ],
        )
    )
    for _ in range(ROUNDS):
        started = world.submit(world.contract())
        calls = [approving(world, world.task(x, started["id"]), x) for x in ("legal1", "fin1")]
        outcomes = race(world, monkeypatch, calls)
        assert all(isinstance(o, dict) for o in outcomes), outcomes
        assert len(world.pending("ceo", started["id"])) == 1
        joined = count(
            world,
            approval_token,
            approval_token.c.instance_id == started["id"],
            approval_token.c.node_id == "join",
        )
        assert joined == 2


def test_a_crash_mid_action_leaves_the_last_consistent_state(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.publish(
        chain(
            "crashy",
            approver("ceo", by_role("ceo")),
            node(
                "act",
                "action",
                actions=[
                    {"type": "set_fields", "values": {"status": "approved"}},
                    {"type": "webhook", "url": "https://erp.example.com/hooks"},
                ],
            ),
        )
    )
    record_id = world.contract()
    started = world.submit(record_id)
    task = world.task("ceo", started["id"])
    before = world.instance(started["id"])

    def crash(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(flow_step, "enqueue_webhook", crash)
    with pytest.raises(RuntimeError):
        world.act(task, "approve", "ceo")
    monkeypatch.undo()
    # nothing of the half-done approval is kept: not the decision, not the record change
    assert world.instance(started["id"]) == before
    assert world.record(record_id)["status"] == "draft"
    done = world.act(task, "approve", "ceo")
    assert done["status"] == "approved"
    assert world.record(record_id)["status"] == "approved"


@pytest.mark.slow
def test_a_process_killed_mid_approval_loses_nothing_and_duplicates_nothing(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    # given: an approval whose next step has an action, in a process that stops mid-way
    world.publish(
        chain(
            "killed",
            approver("ceo", by_role("ceo")),
            node(
                "act", "action", actions=[{"type": "set_fields", "values": {"status": "approved"}}]
            ),
            approver("fin", by_role("finance"), mode="or_sign"),
        )
    )
    record_id = world.contract()
    started = world.submit(record_id)
    task = world.task("ceo", started["id"])
    before = world.instance(started["id"])
    log_path = tmp_path / "approver.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.platform.flow_crash",
                str(settings.data_dir),
                settings.database_url,
                settings.namespace,
                str(task),
                str(world.ids["ceo"]),
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while "decided" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        # when: it is killed between the decision and the commit
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(5) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # then: the instance is at its last consistent state; the approval can be made again, once
    assert world.instance(started["id"]) == before
    assert world.record(record_id)["status"] == "draft"
    done = world.act(task, "approve", "ceo")
    assert [s["node_id"] for s in done["current"]] == ["fin"]
    assert world.record(record_id)["status"] == "approved"
    assert len(world.pending("fin1", started["id"])) == 1
