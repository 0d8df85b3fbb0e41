"""Step timeouts as durable jobs, driven by a fake clock and single worker passes (both
databases): reminders repeat up to their limit, escalation moves the task, automatic
decisions decide it, and a timer of a decided task does nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from formloom.platform.flow_timers import fire_timeout
from formloom.platform.settings import Settings
from formloom.platform.tables import job, notification
from formloom.platform.worker import Worker
from tests.platform.flow_world import ENV, World, approver, by_role, chain, make_world


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def run_worker_at(world: World, moment: datetime) -> int:
    return Worker(world.workspace, clock=lambda: moment).run_once()


def reminders(world: World, login: str) -> int:
    with world.workspace.begin(ENV, readonly=True) as conn:
        rows = conn.execute(
            select(notification.c.id).where(
                notification.c.user_id == world.ids[login], notification.c.kind == "remind"
            )
        ).all()
    return len(rows)


def test_a_late_task_is_reminded_then_escalated_to_the_managers_manager(world: World) -> None:
    world.publish(
        chain(
            "late",
            approver(
                "manager",
                {"type": "manager"},
                timeouts=[
                    {
                        "after": "PT24H",
                        "action": "remind",
                        "repeat_every": "PT12H",
                        "max_reminders": 3,
                    },
                    {"after": "P3D", "action": "escalate", "escalate_to": {"type": "manager"}},
                ],
            ),
        )
    )
    t0 = datetime.now(UTC)
    started = world.submit(world.contract(), now=t0)
    assert run_worker_at(world, t0 + timedelta(hours=23)) == 0
    assert run_worker_at(world, t0 + timedelta(hours=25)) == 1
    assert reminders(world, "mgr") == 1
    assert run_worker_at(world, t0 + timedelta(hours=25)) == 0  # the next one is not due
    # three days later: the 2nd and 3rd (last) reminders, then the escalation
    assert run_worker_at(world, t0 + timedelta(days=3, minutes=1)) == 3
    assert reminders(world, "mgr") == 3
    after = world.instance(started["id"])
    assert [t["assignee_id"] for t in after["current"][0]["tasks"]] == [world.ids["vp"]]
    escalation = after["timeline"][-1]
    assert (escalation["action"], escalation["automatic"]) == ("escalate", True)
    assert escalation["details"]["from"] == world.ids["mgr"]
    assert escalation["reason"] == "timed out, escalated"
    # a restart runs nothing twice
    assert run_worker_at(world, t0 + timedelta(days=3, minutes=1)) == 0
    assert world.instance(started["id"])["timeline"] == after["timeline"]
    done = world.act(world.task("vp", started["id"]), "approve", "vp")
    assert done["status"] == "approved"


def test_a_timeout_decides_an_open_task_and_does_nothing_for_a_decided_one(
    world: World,
) -> None:
    world.publish(
        chain(
            "hurry",
            approver("ceo", by_role("ceo"), timeouts=[{"after": "PT1H", "action": "auto_approve"}]),
            approver(
                "finance",
                by_role("finance"),
                mode="or_sign",
                timeouts=[{"after": "PT2H", "action": "auto_reject"}],
            ),
        )
    )
    t0 = datetime.now(UTC)
    decided = world.submit(world.contract(), now=t0)
    world.act(world.task("ceo", decided["id"]), "approve", "ceo", now=t0 + timedelta(minutes=5))
    untouched = world.submit(world.contract(), now=t0)
    assert run_worker_at(world, t0 + timedelta(minutes=90)) == 2  # both ceo timers ran
    decided_after = world.instance(decided["id"])
    assert [e["action"] for e in decided_after["timeline"]] == ["submit", "approve"]
    auto = world.instance(untouched["id"])
    assert [(e["action"], e["details"].get("reason")) for e in auto["timeline"]] == [
        ("submit", None),
        ("auto_approve", "timeout_approve"),
    ]
    ceo_task = next(t for t in auto["tasks"] if t["node_id"] == "ceo")
    assert (ceo_task["status"], ceo_task["auto"], ceo_task["decided_by"]) == (
        "approved",
        "timeout",
        None,
    )
    # finance opened at +5 min (a person approved) and at +60 min (the timer's due time)
    assert run_worker_at(world, t0 + timedelta(hours=2, minutes=10)) == 3
    assert world.instance(decided["id"])["status"] == "rejected"
    assert world.instance(untouched["id"])["status"] == "running"
    assert run_worker_at(world, t0 + timedelta(hours=4)) == 3
    assert world.instance(untouched["id"])["status"] == "rejected"


def test_a_timer_job_run_twice_has_one_effect(world: World) -> None:
    world.publish(
        chain(
            "twice",
            approver(
                "ceo",
                by_role("ceo"),
                timeouts=[
                    {"after": "PT1H", "action": "remind"},
                    {"after": "PT2H", "action": "auto_reject"},
                ],
            ),
        )
    )
    t0 = datetime.now(UTC)
    started = world.submit(world.contract(), now=t0)
    with world.workspace.begin(ENV, readonly=True) as conn:
        payloads = conn.execute(select(job.c.payload).order_by(job.c.id)).scalars().all()
    for payload in payloads * 2:  # every timer fires twice (a worker died after committing)
        with world.workspace.begin(ENV) as conn:
            fire_timeout(
                conn,
                cache_key=world.workspace.cache_key,
                env=ENV,
                payload=payload,
                now=t0 + timedelta(hours=3),
            )
    after = world.instance(started["id"])
    assert [e["action"] for e in after["timeline"]] == [
        "submit",
        "remind",
        "auto_reject",
        "rejected",
    ]
    assert reminders(world, "ceo") == 1
