"""Record scope benchmark: a rep's "own" list against an admin's list on 1,000,000 rows.

``python -m bench.access [--rows N] [--backend sqlite|postgresql|both] [--quick]``

Each backend gets a fresh workspace with the benchmarks' `opportunity` entity
(:mod:`bench.records_setup`: 50 owners, a fifth of the rows per stage), a `rep`
role that reads only its own opportunities and two users: the rep (owner of a
fiftieth of the rows) and an administrator (explicit bypass, every row). Each
request is what the records API does for a list: authenticate the bearer
token, load the principal's access, plan and run the query (page of 50, with
the total), so both sides pay the same fixed costs and differ only in the
scope. Two lists:

- ``newest``: the default list, newest first (a rep's "my opportunities");
- ``stage``: one stage, sorted by close date (the records benchmark's list); the
  entity declares an index (owner_id, close_date), as an admin would for "my
  opportunities by close date" (the admin's list uses the close_date index).

Rounds alternate between the two principals so drift on a shared machine hits
both alike. The figure is the rep's throughput ÷ the admin's (target ≥ 0.7 on
``newest``); p50/p99 latencies are printed too. Results go to
``bench/results/access-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backends import fresh_workspace, postgres_problem, postgres_url, settle
from bench.machine import machine_facts
from bench.records_setup import ENTITY, ENV, STAGES, _fill, opportunity_document
from bench.timing import ratio
from formloom.platform import tokens
from formloom.platform.auth import authenticate_request
from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.list_request import ListRequest
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.principal import Principal
from formloom.platform.record_query import list_in_environment
from tests.identity import create_user

RESULTS = Path(__file__).with_name("results")
TARGET = 0.7
REP_ROLE = {
    "name": "rep",
    "label": {"en": "Sales rep", "zh": "销售代表"},
    "entities": {ENTITY: {"read": "own", "update": "own", "create": True}},
}
#: What an admin adds for "my opportunities by close date" (entity indexes may name the owner).
OWNER_INDEX = {"name": "owner_close", "fields": ["owner_id", "close_date"]}
LISTS: dict[str, ListRequest] = {
    "newest": ListRequest(limit=50),
    # owner 1 owns the rows g ≡ 0 (mod 50), all of them in STAGES[0]
    "stage": ListRequest(filters=[("stage", STAGES[0])], sort=["close_date"], limit=50),
}


def _prepare(workspace: Workspace, rows: int) -> dict[str, str]:
    document = opportunity_document()
    document["indexes"] = [OWNER_INDEX]
    MetaStore(workspace).apply(
        ENV,
        [SourceDocument("entity", document, ENTITY), SourceDocument("role", REP_ROLE, "rep")],
        PublishOptions(),
    )
    rep = create_user(workspace, "rep", roles={ENV: ["rep"]})
    admin = create_user(workspace, "boss", admin=True)
    assert rep == 1, "the rep must be owner 1 of the generated rows"
    with workspace.begin(ENV) as conn:
        runtime = load_entity(conn, namespace=workspace.cache_key, env=ENV, name=ENTITY)
        table = f'"{workspace.env_schema(ENV)}"."{ENTITY}"'
        _fill(conn, table, runtime.table.c.created_at.type, rows, sqlite=workspace.is_sqlite)
    settle(workspace, [ENTITY])
    headers = {}
    for login, user_id in (("rep", rep), ("admin", admin)):
        principal = Principal(user_id=user_id, login=login, admin=login == "admin")
        secret = tokens.create_token(workspace, caller=Caller(principal), env=None).secret
        headers[login] = f"Bearer {secret}"
    return headers


def _request(workspace: Workspace, authorization: str, asked: ListRequest) -> Callable[[], int]:
    def run() -> int:
        who = authenticate_request(
            workspace,
            authorization=authorization,
            session_cookie=None,
            csrf_header=None,
            method="GET",
            lang="en",
        )
        page = list_in_environment(workspace, ENV, ENTITY, asked, principal=who.principal)
        return len(page.items)

    return run


def _measure(calls: dict[str, Callable[[], int]], rounds: int, per_round: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for name, call in calls.items():  # warm up caches and plans
        for _ in range(3):
            assert call() == 50, name
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(per_round):
                began = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - began)
    out: dict[str, Any] = {}
    for name, samples in times.items():
        ordered = sorted(samples)
        out[name] = {
            "requests_per_s": round(len(samples) / sum(samples), 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
            "requests": len(samples),
        }
    return out


def run_backend(backend: str, *, rows: int, rounds: int, per_round: int) -> dict[str, Any]:
    with fresh_workspace(backend, pg_url=postgres_url()) as workspace:
        began = time.perf_counter()
        headers = _prepare(workspace, rows)
        prepared = time.perf_counter() - began
        result: dict[str, Any] = {"rows": rows, "setup_s": round(prepared, 1), "lists": {}}
        for name, asked in LISTS.items():
            calls = {
                "own": _request(workspace, headers["rep"], asked),
                "admin": _request(workspace, headers["admin"], asked),
            }
            figures = _measure(calls, rounds, per_round)
            own, admin = figures["own"]["requests_per_s"], figures["admin"]["requests_per_s"]
            figures["ratio"] = round(ratio(own, admin), 3)
            figures["pass"] = name != "newest" or figures["ratio"] >= TARGET
            result["lists"][name] = figures
            print(
                f"{backend:10} {name:7} own {own:8.1f}/s p50 {figures['own']['p50_ms']:.2f} ms"
                f" | admin {admin:8.1f}/s p50 {figures['admin']['p50_ms']:.2f} ms"
                f" | own ÷ admin {figures['ratio']:.2f}",
                flush=True,
            )
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 4 rounds of 20")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds, args.per_round = 100_000, 4, 20
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {"machine": machine_facts(), "target": TARGET, "backends": {}}
    for backend in backends:
        if backend == "postgresql" and (problem := postgres_problem(postgres_url())):
            print(f"postgresql: not run ({problem})")
            continue
        results["backends"][backend] = run_backend(
            backend, rows=args.rows, rounds=args.rounds, per_round=args.per_round
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"access-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
