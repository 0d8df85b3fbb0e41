"""Approval actions per second through the HTTP API, with the ratio to plain record updates.

``python -m bench.approvals_http [--actions N] [--seconds S] [--rounds N] [--concurrency 8]
[--backends sqlite,postgresql] [--quick]``

Issue 5 asks for approve actions per second through the API at concurrency 8, reported
with the ratio to a plain record update in the same run. ``bench.approvals`` measures
the same pair at the service layer; this one goes through a real server.

For each database: a fresh workspace with the ``contract`` entity and the two-step flow
of :mod:`bench.approvals` (``first`` → ``second``, one approver each). The ``first``
approver also holds the role ``contract_clerk`` (read and update every contract), so
both loads run as that one **non-admin** user, each request with a bearer login token
issued by formloom's token service. Before the server starts (not timed), through
formloom's services: ``--actions`` contracts per round are created and submitted by
an administrator (each leaves one pending ``first`` task), and as many other contracts
are created for the updates; a few more of each warm the server up.

Then formloom's server runs as its own uvicorn process (``bench.servers``) and
``bench.load`` drives it with ``--concurrency`` workers in ``--rounds`` rounds,
alternating the order (approve, update; update, approve; …):

- **approve**: ``POST /api/envs/production/approvals/tasks/{task_id}/approve`` with
  ``{}``, each pending task of the round exactly once;
- **update**: ``PATCH /api/envs/production/records/contract/{id}`` with
  ``{"amount": …, "version": 1}``, each update contract of the round exactly once.

Each load stops after its ``--actions`` requests or ``--seconds`` seconds. Any answer
but 200 fails the run; afterwards the database is checked: every approved task is
approved once, by its approver, and its instance waits at ``second``; every updated
contract is at version 2. Statements per action are counted in this process on the
same app (an ASGI client, a SQLAlchemy cursor listener). Results go to
``bench/results/approvals-http-<time>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select

from bench.approvals import ENTITY, ENV, flow, in_threads
from bench.backends import BACKENDS, fresh_workspace, postgres_problem, postgres_url
from bench.load import Call, CallSource, LoadResult, merge, run_load
from bench.machine import code_facts, load_average, machine_facts, postgres_facts
from bench.servers import ServerSpec, serve
from formloom.designer_api.app import create_app
from formloom.platform import records
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.flow_submit import submit
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.tables import approval_instance, approval_task
from tests.identity import bearer_token, create_user, principal_of

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MEASURES = ("approve", "update")
FULL = {"actions": 2_000, "seconds": 120.0, "rounds": 4, "warmup": 100}
QUICK = {"actions": 100, "seconds": 20.0, "rounds": 2, "warmup": 20}
#: Actions of each kind counted statement by statement (after one uncounted action).
COUNTED = 5
#: Threads creating and submitting the contracts before the server starts.
PREPARE_THREADS = 4
#: The approver's role: read and change every contract (no admin bypass).
CLERK_ROLE = {
    "name": "contract_clerk",
    "label": {"en": "Contract clerk", "zh": "合同专员"},
    "entities": {"contract": {"read": "all", "update": "all"}},
}
TASKS_PATH = f"/api/envs/{ENV}/approvals/tasks"
RECORDS_PATH = f"/api/envs/{ENV}/records/contract"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    actions: int
    seconds: float
    rounds: int
    concurrency: int
    warmup: int
    log_dir: Path


@dataclass
class Batch:
    """What one load works on: pending ``first`` task ids, or contracts (id, amount)."""

    tasks: list[int] = field(default_factory=list)
    contracts: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class People:
    """The submitter (an administrator) and the two approvers, by user id."""

    submitter: int
    first: int
    second: int


# -- the workspace -----------------------------------------------------------------------------


def prepare_workspace(workspace: Workspace) -> People:
    """The contract entity, the clerk role, the users and the published two-step flow."""
    store = MetaStore(workspace)
    store.apply(ENV, [SourceDocument("entity", ENTITY, "contract.json")], PublishOptions())
    store.apply(ENV, [SourceDocument("role", CLERK_ROLE, "clerk.json")], PublishOptions())
    people = People(
        submitter=create_user(workspace, "bench_submitter", admin=True),
        first=create_user(workspace, "bench_first", roles={ENV: ["contract_clerk"]}),
        second=create_user(workspace, "bench_second"),
    )
    document = flow(people.first, people.second)
    store.apply(ENV, [SourceDocument("flow", document, "flow.json")], PublishOptions())
    return people


def make_batches(workspace: Workspace, people: People, sizes: list[int]) -> list[Batch]:
    """One batch per size: that many submitted contracts (their tasks) and other contracts."""
    submitter = principal_of(workspace, people.submitter)
    batches = [Batch() for _ in sizes]

    def submitted(batch: Batch, n: int) -> Callable[[], None]:
        def run() -> None:
            made = records.create_record(
                workspace,
                env=ENV,
                entity="contract",
                payload={"title": f"approve {n}", "amount": n},
                principal=submitter,
            )
            instance = submit(
                workspace, env=ENV, entity="contract", record_id=made["id"], principal=submitter
            )
            [step] = instance["current"]
            [task] = step["tasks"]
            if step["node_id"] != "first" or task["assignee_id"] != people.first:
                raise RuntimeError(f"unexpected first step of instance {instance['id']}: {step}")
            batch.tasks.append(int(task["id"]))

        return run

    def plain(batch: Batch, n: int) -> Callable[[], None]:
        def run() -> None:
            made = records.create_record(
                workspace,
                env=ENV,
                entity="contract",
                payload={"title": f"update {n}", "amount": n},
                principal=submitter,
            )
            if made["version"] != 1:
                raise RuntimeError(f"a new contract at version {made['version']}")
            batch.contracts.append((int(made["id"]), n))

        return run

    work = [
        make(batch, n)
        for batch, size in zip(batches, sizes, strict=True)
        for n in range(size)
        for make in (submitted, plain)
    ]
    in_threads(PREPARE_THREADS, work)
    for batch in batches:  # the threads appended in any order
        batch.tasks.sort()
        batch.contracts.sort()
    return batches


def approve_calls(tasks: list[int], authorization: str) -> CallSource:
    auth = (("Authorization", authorization),)
    return lambda n: Call("POST", f"{TASKS_PATH}/{tasks[n]}/approve", {}, auth)


def update_calls(contracts: list[tuple[int, int]], authorization: str) -> CallSource:
    auth = (("Authorization", authorization),)

    def call(n: int) -> Call:
        record_id, amount = contracts[n]
        return Call(
            "PATCH", f"{RECORDS_PATH}/{record_id}", {"amount": amount + 1, "version": 1}, auth
        )

    return call


# -- statements per action ------------------------------------------------------------------------


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(statement.split())[:160])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def count_statements(workspace: Workspace, batch: Batch, authorization: str) -> dict[str, Any]:
    """SQL statements per approve and per update, through the same app in this process.

    The first action of each kind is not counted (caches fill); the others are, one by
    one. Includes the credential check of every request.
    """
    app = create_app(workspace.settings, run_worker=False)
    sources = {
        "approve": approve_calls(batch.tasks, authorization),
        "update": update_calls(batch.contracts, authorization),
    }
    found: dict[str, Any] = {}
    with TestClient(app) as client:
        for measure, source in sources.items():
            counts: list[int] = []
            kinds: Counter[str] = Counter()
            example: list[str] = []
            for n in range(COUNTED + 1):
                call = source(n)
                with statements() as seen:
                    answer = client.request(
                        call.method, call.path, json=call.body, headers=dict(call.headers)
                    )
                if answer.status_code != 200:
                    raise RuntimeError(
                        f"{call.method} {call.path}: {answer.status_code} {answer.text}"
                    )
                if n == 0:
                    continue
                counts.append(len(seen))
                kinds.update(s.split(" ", 1)[0].upper() for s in seen)
                example = example or seen
            found[measure] = {
                "per_action": statistics.median(counts),
                "all": counts,
                "by_kind_per_action": {k: v / len(counts) for k, v in kinds.most_common()},
                "example": example,
            }
    return found


# -- the loads -------------------------------------------------------------------------------------


def server_spec(workspace: Workspace) -> ServerSpec:
    settings = workspace.settings
    return ServerSpec(
        "formloom",
        "formloom.designer_api.app:create_app",
        "/api/health",
        {
            "FORMLOOM_DATA_DIR": str(settings.data_dir),
            "FORMLOOM_DATABASE_URL": settings.database_url,
            "FORMLOOM_NAMESPACE": settings.namespace,
        },
    )


def load(base_url: str, source: CallSource, count: int, plan: Plan, pid: int) -> LoadResult:
    return run_load(
        base_url,
        source,
        expect=200,
        concurrency=plan.concurrency,
        count=count,
        seconds=plan.seconds,
        server_pid=pid,
    )


def fail_on_errors(measure: str, result: LoadResult) -> None:
    """Any answer but 200 (a 409 for a task approved twice, a 423, a 5xx…) ends the run."""
    if result.errors:
        raise RuntimeError(
            f"{measure}: {result.errors} of {result.requests} requests failed "
            f"(statuses {result.statuses}); the first: {result.first_error}"
        )


def round_line(backend: str, number: int, rounds: int, found: dict[str, LoadResult]) -> str:
    approve, update = found["approve"], found["update"]
    return (
        f"{backend} round {number}/{rounds}: "
        f"approve {approve.throughput:.0f}/s (p50 {approve.percentile(0.5):.1f} ms, "
        f"p95 {approve.percentile(0.95):.1f} ms), "
        f"update {update.throughput:.0f}/s (p50 {update.percentile(0.5):.1f} ms, "
        f"p95 {update.percentile(0.95):.1f} ms), "
        f"ratio {approve.throughput / update.throughput:.2f}; "
        f"CPUs {approve.cpu.get('machine_busy', 0):.0%}/{update.cpu.get('machine_busy', 0):.0%} "
        f"busy, load average {load_average()}"
    )


def summary(result: LoadResult) -> dict[str, Any]:
    """``LoadResult.as_dict`` with p95, and the throughput precise enough to round once."""
    return {
        **result.as_dict(),
        "throughput": round(result.throughput, 3),
        "p95_ms": round(result.percentile(0.95), 2),
    }


def verify(
    workspace: Workspace, people: People, approved: list[int], updated: list[int]
) -> dict[str, int]:
    """Check in the database that the actions sent, and only they, happened, each once.

    The approved ``first`` tasks are exactly ``approved``, all decided by the approver;
    each of their instances waits at ``second``; the contracts at version 2 are exactly
    ``updated``. No other write touched the workspace, so the sets must be equal.
    """
    task, instance = approval_task, approval_instance
    with workspace.begin(ENV, readonly=True) as conn:
        decided = conn.execute(
            select(task.c.id, task.c.decided_by).where(
                task.c.node_id == "first", task.c.status == "approved"
            )
        ).all()
        if sorted(row.id for row in decided) != sorted(approved):
            raise RuntimeError(
                f"{len(approved)} approvals sent, {len(decided)} approved first tasks found"
            )
        deciders = {row.decided_by for row in decided}
        if deciders != {people.first}:
            raise RuntimeError(f"first tasks decided by {deciders}, not by {people.first}")
        waiting = conn.execute(
            select(func.count())
            .select_from(task)
            .join(instance, instance.c.id == task.c.instance_id)
            .where(
                task.c.node_id == "second",
                task.c.status == "pending",
                instance.c.status == "running",
            )
        ).scalar_one()
        if waiting != len(approved):
            raise RuntimeError(f"{len(approved)} approvals, but {waiting} instances wait at second")
        contract = load_entity(conn, namespace=workspace.cache_key, env=ENV, name="contract").table
        changed = conn.execute(select(contract.c.id).where(contract.c.version == 2)).scalars()
        if sorted(changed) != sorted(updated):
            raise RuntimeError(f"{len(updated)} updates sent, other contracts at version 2")
        twice = conn.execute(select(func.count()).where(contract.c.version > 2)).scalar_one()
        if twice:
            raise RuntimeError(f"{twice} contracts were changed more than once")
    return {"approved_once": len(approved), "updated_once": len(updated)}


# -- one database -------------------------------------------------------------------------------


def run_backend(backend: str, plan: Plan, pg_url: str) -> dict[str, Any]:
    started = time.perf_counter()

    def progress(message: str) -> None:
        log(f"{backend}: {message}")

    out: dict[str, Any] = {"load_average_before": load_average()}
    with fresh_workspace(backend, pg_url=pg_url) as workspace:
        people = prepare_workspace(workspace)
        authorization = f"Bearer {bearer_token(workspace, people.first)}"
        began = time.perf_counter()
        sizes = [COUNTED + 1, plan.warmup] + [plan.actions] * plan.rounds
        counting, warmup, *batches = make_batches(workspace, people, sizes)
        out["prepare_seconds"] = round(time.perf_counter() - began, 1)
        progress(
            f"submitted {sum(sizes):,} contracts and created as many others "
            f"in {out['prepare_seconds']:.0f} s"
        )
        out["statements"] = count_statements(workspace, counting, authorization)
        progress(
            "SQL statements per action: "
            + ", ".join(f"{m} {out['statements'][m]['per_action']:g}" for m in MEASURES)
        )
        workspace.dispose()

        runs: list[dict[str, LoadResult]] = []
        approved = counting.tasks[: COUNTED + 1]
        updated = [c[0] for c in counting.contracts[: COUNTED + 1]]
        with serve(server_spec(workspace), log_dir=plan.log_dir) as server:
            out["server_started_in_s"] = round(server.started_in_s, 2)

            def act(measure: str, batch: Batch, name: str) -> LoadResult:
                """One load over ``batch``; what it did is remembered for :func:`verify`."""
                if measure == "approve":
                    source = approve_calls(batch.tasks, authorization)
                else:
                    source = update_calls(batch.contracts, authorization)
                size = len(batch.tasks if measure == "approve" else batch.contracts)
                result = load(server.base_url, source, size, plan, server.pid)
                fail_on_errors(name, result)
                # The load hands out request numbers in order and sends every number it
                # handed out before its deadline: what was sent is a prefix of the batch.
                if measure == "approve":
                    approved.extend(batch.tasks[: result.requests])
                else:
                    updated.extend(c[0] for c in batch.contracts[: result.requests])
                return result

            for measure in MEASURES:
                act(measure, warmup, f"warm-up {measure}")
            for number, batch in enumerate(batches):
                order = MEASURES if number % 2 == 0 else tuple(reversed(MEASURES))
                found = {m: act(m, batch, f"round {number + 1} {m}") for m in order}
                runs.append(found)
                progress(round_line(backend, number + 1, plan.rounds, found))
        out["verified"] = verify(workspace, people, approved, updated)
        progress(f"verified: {out['verified']}")
        workspace.dispose()
    rates = {m: [r[m].throughput for r in runs] for m in MEASURES}
    ratios = [a / u for a, u in zip(rates["approve"], rates["update"], strict=True)]
    best = max(range(len(runs)), key=lambda k: rates["approve"][k])
    out.update(
        {
            "rounds": [
                {
                    "order": list(MEASURES if k % 2 == 0 else reversed(MEASURES)),
                    **{m: summary(r[m]) for m in MEASURES},
                    "ratio": round(ratios[k], 4),
                }
                for k, r in enumerate(runs)
            ],
            "pooled": {m: summary(merge([r[m] for r in runs])) for m in MEASURES},
            "best": {
                m: {
                    "per_second": round(max(rates[m]), 1),
                    "round": rates[m].index(max(rates[m])) + 1,
                }
                for m in MEASURES
            },
            "ratio": {
                "median": round(statistics.median(ratios), 4),
                "min": round(min(ratios), 4),
                "max": round(max(ratios), 4),
                "best_approve_round": {"round": best + 1, "ratio": round(ratios[best], 4)},
            },
            "load_average_after": load_average(),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return out


# -- the command --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.approvals_http",
        description="Approve actions per second through formloom's HTTP API, against plain "
        "record updates by the same user in the same run, on SQLite and PostgreSQL.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 actions, 2 rounds")
    parser.add_argument("--actions", type=_count, help="approves and updates per round (2,000)")
    parser.add_argument("--seconds", type=float, help="at most this long per load (120)")
    parser.add_argument("--rounds", type=_count, help="rounds, loads in ABBA order (4)")
    parser.add_argument("--warmup", type=_count, help="untimed actions of each kind first (100)")
    parser.add_argument("--concurrency", type=_count, default=8, help="client workers (8)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="sqlite,postgresql (default both)"
    )
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; use {', '.join(BACKENDS)}")
    return args


def _count(value: str) -> int:
    number = int(value.replace("_", "").replace(",", ""))
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def report(results: dict[str, Any]) -> str:
    """The figures as text: every round, then per database the best rounds and the ratio."""
    lines = []
    for backend, data in results["backends"].items():
        lines.append(f"\n{backend} (load average {data['load_average_before']} before):")
        lines.append(
            f"  {'round':<7}{'order':<17}{'approve/s':>10}{'update/s':>10}{'ratio':>7}"
            f"{'approve p50/p95 ms':>20}{'update p50/p95 ms':>19}{'CPUs busy':>11}"
        )
        for number, found in enumerate(data["rounds"], 1):
            approve, update = found["approve"], found["update"]
            busy = (
                approve["cpu"].get("machine_busy", 0) + update["cpu"].get("machine_busy", 0)
            ) / 2
            lines.append(
                f"  {number:<7}{', '.join(found['order']):<17}{approve['throughput']:>10.0f}"
                f"{update['throughput']:>10.0f}{found['ratio']:>7.2f}"
                f"{approve['p50_ms']:>11.1f} / {approve['p95_ms']:<6.1f}"
                f"{update['p50_ms']:>10.1f} / {update['p95_ms']:<6.1f}{busy:>9.0%}"
            )
        best, ratio, pooled = data["best"], data["ratio"], data["pooled"]
        lines.append(
            f"  best: approve {best['approve']['per_second']:.0f}/s (round "
            f"{best['approve']['round']}), update {best['update']['per_second']:.0f}/s (round "
            f"{best['update']['round']}); ratio approve ÷ update of the same round: median "
            f"{ratio['median']:.2f} (range {ratio['min']:.2f}–{ratio['max']:.2f}; "
            f"{ratio['best_approve_round']['ratio']:.2f} in the best approve round)"
        )
        lines.append(
            f"  all rounds pooled: approve p50 {pooled['approve']['p50_ms']:.1f} ms, p95 "
            f"{pooled['approve']['p95_ms']:.1f} ms, server CPU "
            f"{pooled['approve']['server_cpu_ms_per_request']} ms/request; update p50 "
            f"{pooled['update']['p50_ms']:.1f} ms, p95 {pooled['update']['p95_ms']:.1f} ms, "
            f"server CPU {pooled['update']['server_cpu_ms_per_request']} ms/request"
        )
        counted = data["statements"]
        lines.append(
            f"  SQL statements per action: approve {counted['approve']['per_action']:g}, "
            f"update {counted['update']['per_action']:g}; load average after "
            f"{data['load_average_after']}"
        )
    for backend, reason in results["not_run"].items():
        lines.append(f"\n{backend}: NOT RUN ({reason})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder: Path = args.results_dir
    folder.mkdir(parents=True, exist_ok=True)
    plan = Plan(
        actions=args.actions,
        seconds=args.seconds,
        rounds=args.rounds,
        concurrency=args.concurrency,
        warmup=args.warmup,
        log_dir=folder / f"approvals-http-{stamp}-logs",
    )
    pg_url = args.pg_url or postgres_url()
    results: dict[str, Any] = {
        "benchmark": "approvals_http",
        "machine": machine_facts(),
        "code": code_facts(ROOT),
        "options": {"argv": " ".join(argv), **asdict(plan), "log_dir": str(plan.log_dir)},
        "user": "bench_first: the first step's approver, not an administrator, role "
        "contract_clerk (read and update every contract); both loads",
        "databases": {},
        "backends": {},
        "not_run": {},
    }
    log(f"load average {results['machine']['load_average']} on {results['machine']['cpus']} CPUs")
    for backend in args.backends:
        if backend == "postgresql":
            problem = postgres_problem(pg_url)
            if problem:
                results["not_run"][backend] = f"PostgreSQL at {pg_url} is not reachable ({problem})"
                log(f"NOT RUN: {results['not_run'][backend]}")
                continue
            results["databases"][backend] = postgres_facts(pg_url)
        log(f"{backend}: starting")
        results["backends"][backend] = run_backend(backend, plan, pg_url)
    results["machine"]["load_average_after"] = load_average()
    print(report(results))
    path = folder / f"approvals-http-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
