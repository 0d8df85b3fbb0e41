"""Approval actions per second through the service layer, with the ratio to plain record updates.

``python -m bench.approvals [--actions N] [--threads N] [--rounds N] [--backends …]``

For each database: a fresh workspace with a ``contract`` entity and a two-step
flow (``first`` → ``second``, one approver each). ``--actions`` contracts are
submitted (not timed). Then, in ``--rounds`` rounds alternating the order:

- **approve**: ``--threads`` threads approve the pending ``first`` tasks, each
  its own share, through :func:`formloom.platform.flow_tasks.act_on_task` (the
  service the HTTP route calls): lock the instance, the conditional task update,
  the step's outcome, the next task, its notification and the timeline entry,
  in one transaction;
- **update**: the same threads change one field of as many other contracts
  through :func:`formloom.platform.records.update_record` (a plain record update
  with its version check, audit entry and the record-lock lookup).

It prints actions per second (best round) and the ratio approve ÷ update of the
same round, and writes ``bench/results/approvals-<time>.json``. Each approve
also passes the record lock's lookup on the contract it changes nothing of.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backends import BACKENDS, fresh_workspace, postgres_problem, postgres_url
from formloom.platform import records, users
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION
from formloom.platform.flow_inbox import inbox
from formloom.platform.flow_submit import submit
from formloom.platform.flow_tasks import TaskAction, act_on_task
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.principal import Principal

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ENV = PRODUCTION
LABEL = {"zh": "合同", "en": "Contract"}
ENTITY = {
    "name": "contract",
    "label": LABEL,
    "title_field": "title",
    "fields": [
        {"name": "title", "label": LABEL, "type": "text", "required": True},
        {"name": "amount", "label": LABEL, "type": "integer"},
    ],
}


def flow(first: int, second: int) -> dict[str, Any]:
    def step(node_id: str, user_id: int, following: str) -> dict[str, Any]:
        return {
            "id": node_id,
            "type": "approver",
            "label": LABEL,
            "assignees": [{"type": "users", "users": [user_id]}],
            "next": following,
        }

    return {
        "name": "contract_approval",
        "label": LABEL,
        "entity": "contract",
        "nodes": [
            {"id": "start", "type": "start", "label": LABEL, "next": "first"},
            step("first", first, "second"),
            step("second", second, "end"),
            {"id": "end", "type": "end", "label": LABEL, "outcome": "approved"},
        ],
    }


def person(workspace: Workspace, login: str, *, admin: bool = False) -> Principal:
    new = users.NewUser(login=login, password=None, admin=admin)
    user_id = int(users.create_user(workspace, new, caller=PLATFORM_CALLER)["id"])
    return Principal(user_id=user_id, login=login, admin=admin)


def in_threads(threads: int, work: list[Callable[[], Any]]) -> float:
    """Run ``work`` split over ``threads`` threads; the wall time in seconds."""
    shares = [work[k::threads] for k in range(threads)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def run(share: list[Callable[[], Any]]) -> None:
        start.wait()
        try:
            for call in share:
                call()
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    running = [threading.Thread(target=run, args=(share,)) for share in shares]
    for thread in running:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in running:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} call(s) failed; the first: {errors[0]!r}")
    return elapsed


def run_backend(backend: str, *, actions: int, threads: int, rounds: int, pg_url: str) -> Any:
    with fresh_workspace(backend, pg_url=pg_url) as workspace:
        store = MetaStore(workspace)
        store.apply(ENV, [SourceDocument("entity", ENTITY, "contract")], PublishOptions())
        admin = person(workspace, "submitter", admin=True)
        first = person(workspace, "first_approver")
        second = person(workspace, "second_approver")
        store.apply(
            ENV,
            [SourceDocument("flow", flow(first.user_id or 0, second.user_id or 0), "flow")],
            PublishOptions(),
        )
        samples: dict[str, list[float]] = {"approve": [], "update": []}
        ratios = []
        for number in range(rounds):
            approve_work = _approvals(workspace, admin, first, actions)
            update_work = _updates(workspace, admin, actions)
            order = ["approve", "update"] if number % 2 == 0 else ["update", "approve"]
            rates = {}
            for measure in order:
                work = approve_work if measure == "approve" else update_work
                rates[measure] = actions / in_threads(threads, work)
                samples[measure].append(rates[measure])
            ratios.append(rates["approve"] / rates["update"])
            print(
                f"  {backend} round {number + 1}: approve {rates['approve']:.0f}/s, "
                f"update {rates['update']:.0f}/s, ratio {ratios[-1]:.2f}",
                flush=True,
            )
        return {
            "backend": backend,
            "actions": actions,
            "threads": threads,
            "rounds": rounds,
            "approve_per_second": {"best": max(samples["approve"]), "all": samples["approve"]},
            "update_per_second": {"best": max(samples["update"]), "all": samples["update"]},
            "ratio": {"median": statistics.median(ratios), "all": ratios},
        }


def _approvals(
    workspace: Workspace, admin: Principal, approver: Principal, count: int
) -> list[Callable[[], Any]]:
    """Submit ``count`` contracts; one call per pending ``first`` task that approves it."""
    for n in range(count):
        made = records.create_record(
            workspace,
            env=ENV,
            entity="contract",
            payload={"title": f"c{n}", "amount": n},
            principal=admin,
        )
        submit(workspace, env=ENV, entity="contract", record_id=made["id"], principal=admin)
    tasks: list[int] = []
    after = None
    while True:
        page = inbox(workspace, env=ENV, principal=approver, box="pending", limit=200, after=after)
        tasks += [item["id"] for item in page["items"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert len(tasks) == count, (len(tasks), count)

    def approve(task_id: int) -> Callable[[], Any]:
        return lambda: act_on_task(
            workspace,
            env=ENV,
            task_id=task_id,
            action="approve",
            request=TaskAction(),
            principal=approver,
        )

    return [approve(t) for t in tasks]


def _updates(workspace: Workspace, admin: Principal, count: int) -> list[Callable[[], Any]]:
    """``count`` contracts, and one call per contract that changes its amount."""
    made = [
        records.create_record(
            workspace,
            env=ENV,
            entity="contract",
            payload={"title": f"u{n}", "amount": n},
            principal=admin,
        )
        for n in range(count)
    ]

    def update(record: dict[str, Any]) -> Callable[[], Any]:
        return lambda: records.update_record(
            workspace,
            env=ENV,
            entity="contract",
            record_id=record["id"],
            payload={"amount": record["amount"] + 1},
            version=record["version"],
            principal=admin,
        )

    return [update(r) for r in made]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.approvals", description=__doc__)
    parser.add_argument("--actions", type=int, default=400, help="actions per round (400)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent threads (8)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (3)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args(argv)
    pg_url = postgres_url()
    results = []
    for backend in args.backends.split(","):
        if backend == "postgresql" and (problem := postgres_problem(pg_url)):
            print(f"skipping PostgreSQL: {problem}", file=sys.stderr)
            continue
        results.append(
            run_backend(
                backend,
                actions=args.actions,
                threads=args.threads,
                rounds=args.rounds,
                pg_url=pg_url,
            )
        )
    print(f"\n{'database':<12}{'approve/s':>12}{'update/s':>12}{'ratio':>8}")
    for result in results:
        print(
            f"{result['backend']:<12}{result['approve_per_second']['best']:>12.0f}"
            f"{result['update_per_second']['best']:>12.0f}{result['ratio']['median']:>8.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"approvals-{stamp}.json"
    path.write_text(json.dumps({"at": stamp, "results": results}, indent=2))
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
