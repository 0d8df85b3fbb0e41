"""Routing an instance through its flow: conditions, versions, parallel reviews, copies,
handlers, automatic actions and end nodes (both databases)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from formloom.platform.errors import Invalid
from formloom.platform.flow_actions import webhook_job
from formloom.platform.flow_errors import AlreadyInApproval
from formloom.platform.settings import Settings
from formloom.platform.tables import audit, job, notification
from formloom.platform.worker import Worker
from tests.platform.flow_world import (
    ENV,
    World,
    approver,
    by_role,
    chain,
    flow,
    label,
    make_world,
    node,
    users,
)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def contract_flow(*, with_legal: bool) -> dict[str, Any]:
    """Contracts under 100,000 go to the sales director, others to the CEO; version 2 adds
    a legal review after either."""
    after = "legal" if with_legal else "end"
    nodes = [
        node(
            "amount_check",
            "condition",
            branches=[
                {
                    "condition": {"field": "amount", "op": "lt", "value": 100000},
                    "to": "sales_director",
                },
                {"default": True, "to": "ceo"},
            ],
        ),
        approver("sales_director", by_role("sales_director"), mode="or_sign", next=after),
        approver("ceo", by_role("ceo"), next=after),
    ]
    if with_legal:
        nodes.append(approver("legal", by_role("legal"), mode="or_sign", next="end"))
    nodes.append(node("end", "end", outcome="approved"))
    return flow("contract_approval", nodes, label=label("合同审批", "Contract approval"))


def test_contracts_route_by_amount_and_old_instances_finish_on_their_version(
    world: World,
) -> None:
    # given: version 1 and two contracts submitted on it
    assert world.publish(contract_flow(with_legal=False)) == 1
    small = world.submit(world.contract(amount=50_000))
    large = world.submit(world.contract(amount=150_000))
    assert world.pending("director", small["id"]) and not world.pending("ceo", small["id"])
    assert world.pending("ceo", large["id"]) and not world.pending("director", large["id"])
    # when: version 2 adds a legal review, a third contract is submitted on it
    assert world.publish(contract_flow(with_legal=True)) == 2
    newer = world.submit(world.contract(amount=20_000))
    small_done = world.act(world.task("director", small["id"]), "approve", "director")
    large_done = world.act(world.task("ceo", large["id"]), "approve", "ceo")
    newer_after = world.act(world.task("director", newer["id"]), "approve", "director")
    # then: the version 1 instances end without legal; the version 2 one goes to legal
    assert (small["flow_version"], large["flow_version"], newer["flow_version"]) == (1, 1, 2)
    assert small_done["status"] == large_done["status"] == "approved"
    assert newer_after["status"] == "running"
    assert [s["node_id"] for s in newer_after["current"]] == ["legal"]
    assert {t["assignee_id"] for t in newer_after["current"][0]["tasks"]} == {
        world.ids["legal1"],
        world.ids["legal2"],
    }
    finished = world.act(world.task("legal2", newer["id"]), "approve", "legal2")
    assert finished["status"] == "approved"
    legal1_task = next(t for t in finished["tasks"] if t["assignee_id"] == world.ids["legal1"])
    assert legal1_task["status"] == "cancelled"  # or-sign: one decides for the step


def test_the_submit_picks_a_flow_by_entry_condition_and_explains_when_none_applies(
    world: World,
) -> None:
    world.publish(
        chain(
            "big_deals",
            approver("ceo", by_role("ceo")),
            entry_condition={"field": "amount", "op": "ge", "value": 100000},
        )
    )
    world.publish(chain("manual_only", approver("ceo", by_role("ceo")), start_by=["manual"]))
    small = world.contract(amount=10)
    with pytest.raises(Invalid) as refused:
        world.submit(small)
    assert refused.value.issues[0].code == "no_flow"
    assert "`big_deals`, `manual_only`" in refused.value.message
    with pytest.raises(Invalid) as named:
        world.submit(small, flow="big_deals")
    assert named.value.issues[0].code == "entry_condition_not_met"
    started = world.submit(world.contract(amount=200_000))
    assert started["flow"] == "big_deals"
    manual = world.submit(small, via="manual")
    assert manual["flow"] == "manual_only"
    with pytest.raises(AlreadyInApproval):
        world.submit(small, via="manual")


def test_parallel_reviews_meet_at_the_join_then_copy_act_and_end(world: World) -> None:
    # given: legal (or-sign) and finance (60 % of three) review in parallel
    world.publish(
        flow(
            "review",
            [
                node("split", "parallel_split", branches=["legal", "finance"]),
                approver("legal", by_role("legal"), mode="or_sign", next="join"),
                approver(
                    "finance", by_role("finance"), mode="countersign", percentage=60, next="join"
                ),
                node("join", "parallel_join", next="copy"),
                node(
                    "copy",
                    "cc",
                    recipients=[{"type": "record_field", "field": "account_manager"}],
                    next="mark",
                ),
                node(
                    "mark",
                    "action",
                    actions=[
                        {"type": "set_fields", "values": {"status": "approved"}},
                        {
                            "type": "notify",
                            "to": [by_role("finance")],
                            "message": label("合同已通过", "The contract is approved"),
                        },
                        {"type": "webhook", "url": "https://erp.example.com/hooks/contracts"},
                    ],
                    next="end",
                ),
                node("end", "end", outcome="approved"),
            ],
        )
    )
    record_id = world.contract(account_manager=world.ids["mgr"])
    started = world.submit(record_id)
    assert sorted(s["node_id"] for s in started["current"]) == ["finance", "legal"]
    # when: legal approves and two of three finance people do
    world.act(world.task("legal1", started["id"]), "approve", "legal1")
    world.act(world.task("fin1", started["id"]), "approve", "fin1")
    halfway = world.instance(started["id"])
    assert [s["node_id"] for s in halfway["current"]] == ["finance"]
    done = world.act(world.task("fin2", started["id"]), "approve", "fin2")
    # then: the join passed once, the copy went out, the fields were set, jobs were queued
    assert done["status"] == "approved"
    assert world.record(record_id)["status"] == "approved"
    copies = [t for t in done["tasks"] if t["kind"] == "cc"]
    assert [(t["assignee_id"], t["status"]) for t in copies] == [(world.ids["mgr"], "sent")]
    assert [t["status"] for t in done["tasks"] if t["assignee_id"] == world.ids["fin3"]] == [
        "cancelled"
    ]
    actions = [e["details"]["type"] for e in done["timeline"] if e["action"] == "action"]
    assert actions == ["set_fields", "notify", "webhook"]
    with world.workspace.begin(ENV, readonly=True) as conn:
        changes = conn.execute(
            select(audit.c.changes, audit.c.cause, audit.c.actor).where(
                audit.c.record_id == record_id, audit.c.action == "update"
            )
        ).one()
        jobs = conn.execute(select(job.c.job_type).order_by(job.c.id)).scalars().all()
    assert changes.changes == {"status": ["draft", "approved"]}
    assert changes.cause == {"approval_instance": started["id"], "node": "mark"}
    assert changes.actor is None
    assert jobs == ["approval_notify", "approval_webhook"]


def test_notify_and_webhook_jobs_run_once_each(world: World) -> None:
    world.publish(
        chain(
            "told",
            node(
                "tell",
                "action",
                actions=[
                    {
                        "type": "notify",
                        "to": [users(world.ids["fin1"], world.ids["fin2"])],
                        "message": label("已提交", "Submitted"),
                    },
                    {"type": "webhook", "url": "https://erp.example.com/hooks"},
                ],
            ),
        )
    )
    received: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append({"body": json.loads(request.content), **request.headers})
        return httpx.Response(204)

    instance = world.submit(world.contract())
    assert instance["status"] == "approved"
    with webhook_job.using(httpx.MockTransport(answer)):
        assert Worker(world.workspace).run_once() == 2
        assert Worker(world.workspace).run_once() == 0
    [call] = received
    assert call["body"]["instance_id"] == instance["id"]
    assert call["body"]["record"]["title"] == "合同 A"
    assert call["idempotency-key"].startswith(f"formloom:{ENV}:")
    with world.workspace.begin(ENV, readonly=True) as conn:
        told = conn.execute(
            select(notification.c.user_id).where(notification.c.kind == "notify")
        ).scalars()
        assert sorted(told) == sorted([world.ids["fin1"], world.ids["fin2"]])


def test_a_handler_step_completes_and_a_condition_can_reject_at_once(world: World) -> None:
    world.publish(
        flow(
            "filing",
            [
                node(
                    "limit",
                    "condition",
                    branches=[
                        {
                            "condition": {"field": "amount", "op": "gt", "value": 1_000_000},
                            "to": "refused",
                        },
                        {"default": True, "to": "file_it"},
                    ],
                ),
                node("file_it", "handler", assignees=[users(world.ids["legal1"])], next="end"),
                node("refused", "end", outcome="rejected"),
                node("end", "end", outcome="approved"),
            ],
        )
    )
    refused = world.submit(world.contract(amount=2_000_000))
    assert refused["status"] == "rejected"
    filed = world.submit(world.contract(amount=10))
    task = world.task("legal1", filed["id"])
    with pytest.raises(Invalid) as wrong:
        world.act(task, "approve", "legal1")
    assert wrong.value.issues[0].code == "action_not_applicable"
    done = world.act(task, "complete", "legal1", comment="filed in cabinet 3")
    assert done["status"] == "approved"
    assert [e["action"] for e in done["timeline"]] == ["submit", "complete", "approved"]
