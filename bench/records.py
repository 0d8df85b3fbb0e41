"""Records benchmarks over HTTP: formloom vs a hand-written baseline, same run, both databases.

``python -m bench.records [--quick] [--profile] [--write-docs]``. See
``docs/benchmarks.md`` (section "Records over HTTP") for what is measured and how.

For each database: a fresh workspace; formloom's ``opportunity`` entity and the
baseline's table, each loaded with the same ``--rows`` rows; then, in
``--rounds`` rounds (ABBA order), each server is started as its own uvicorn
process, warmed up and loaded in turn — creates, reads by id, list first pages,
list next pages — by ``--concurrency`` asyncio workers in this process. Every
request authenticates with a bearer token (formloom: an administrator's; in the
first round also a non-admin user's whose role reaches every record; the
baseline: its minimal token check). Results go to
``bench/results/records-<time>.json`` (and ``records-latest.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench import baseline_app, records_report, records_setup, spy
from bench.backends import BACKENDS, fresh_workspace, postgres_problem, postgres_url
from bench.load import Call, CallSource, LoadResult, merge, rss_mib, run_load
from bench.machine import (
    CpuMeter,
    code_facts,
    load_average,
    machine_facts,
    postgres_facts,
    wait_until_quiet,
)
from bench.servers import RunningServer, ServerSpec, serve

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
MEASURES = ("create", "read", "list", "list_next")
#: Measured in the first round only: the same requests by a non-admin user whose role
#: reaches every record (scope ``all``), so that the role checks are paid.
ROLE_MEASURES = {"create_role": "create", "read_role": "read", "list_role": "list"}
#: The list measures again after an index on (stage, close_date) was added to both sides.
INDEXED_MEASURES = {"list_ix": "list", "list_next_ix": "list_next"}
SIDES = ("baseline", "formloom")
FORMLOOM_RECORDS = f"/api/envs/{records_setup.ENV}/records/{records_setup.ENTITY}"
BASELINE_RECORDS = "/opportunities"
FULL = {"rows": 1_000_000, "creates": 3_000, "seconds": 15.0, "rounds": 2}
QUICK = {"rows": 10_000, "creates": 500, "seconds": 3.0, "rounds": 1}
BUSY_LOAD = 0.5
#: A warm-up load stops after this long even if it has not sent all its requests.
WARMUP_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    rows: int
    creates: int
    seconds: float
    rounds: int
    concurrency: int
    next_pages: int
    deep_pages: int
    composite: bool
    warmup: int
    profile_seconds: float
    client: str
    log_dir: Path


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- requests ---------------------------------------------------------------------------------


def create_body(n: int) -> dict[str, Any]:
    """The n-th new opportunity (same payload for both sides)."""
    return {
        "name": f"Benchmark opportunity {n}",
        "amount": (n * 7919 % 10_000_000) / 100,
        "stage": records_setup.STAGES[n % len(records_setup.STAGES)],
        "close_date": (date(2026, 1, 1) + timedelta(days=n % 365)).isoformat(),
        "owner_id": n % 50 + 1,
    }


def list_path(records: str, stage: str, after: str | None = None) -> str:
    path = f"{records}?stage={stage}&sort={records_setup.LIST_SORT}&limit={records_setup.PAGE}"
    return path if after is None else f"{path}&after={quote(after, safe='')}"


def sources(
    records: str, ids: list[int], next_pages: list[str], authorization: str
) -> dict[str, CallSource]:
    """The request of each kind, n-th request by n (the same sequence for both sides)."""
    stages = records_setup.STAGES
    auth = (("Authorization", authorization),)
    return {
        "create": lambda n: Call("POST", records, create_body(n), auth),
        "read": lambda n: Call("GET", f"{records}/{ids[n % len(ids)]}", headers=auth),
        "list": lambda n: Call("GET", list_path(records, stages[n % len(stages)]), headers=auth),
        "list_next": lambda n: Call("GET", next_pages[n % len(next_pages)], headers=auth),
    }


def principal_of(measure: str) -> str:
    """Who a measure's requests authenticate as (see ``records_setup.PRINCIPALS``)."""
    return "role" if measure in ROLE_MEASURES else "admin"


def next_page_paths(base_url: str, records: str, pages: int, authorization: str) -> list[str]:
    """Paths of pages 2..``pages`` of every stage's list, following each page's ``next``."""
    paths = []
    headers = {"Authorization": authorization}
    with httpx.Client(base_url=base_url, timeout=120.0, headers=headers) as client:
        for stage in records_setup.STAGES:
            after = None
            for _ in range(pages - 1):
                response = client.get(list_path(records, stage, after))
                response.raise_for_status()
                after = response.json()["next"]
                if after is None:
                    break
                paths.append(list_path(records, stage, after))
    if not paths:
        raise RuntimeError(f"no list of {records} has a second page: too few rows")
    return paths


# -- one server ---------------------------------------------------------------------------------


def server_specs(sides: records_setup.Sides) -> dict[str, ServerSpec]:
    settings = sides.workspace.settings
    return {
        "baseline": ServerSpec(
            "baseline",
            "bench.baseline_app:create_app",
            "/health",
            {
                baseline_app.URL_VARIABLE: sides.baseline_url,
                baseline_app.SCHEMA_VARIABLE: sides.baseline_schema or "",
            },
        ),
        "formloom": ServerSpec(
            "formloom",
            "formloom.designer_api.app:create_app",
            "/api/health",
            {
                "FORMLOOM_DATA_DIR": str(settings.data_dir),
                "FORMLOOM_DATABASE_URL": settings.database_url,
                "FORMLOOM_NAMESPACE": settings.namespace,
            },
        ),
    }


def _prepare(
    server: RunningServer,
    records: str,
    plan: Plan,
    ids: list[int],
    authorization: dict[str, str],
    measures: dict[str, str] | None = None,
    pages: int | None = None,
) -> tuple[dict[str, dict[str, CallSource]], int]:
    """Collect the next-page paths and warm the server up (untimed).

    Returns the requests of each kind per principal, and how many next-page paths there are.
    """
    measures = measures or {m: m for m in MEASURES}
    paths = next_page_paths(
        server.base_url, records, pages or plan.next_pages, authorization["admin"]
    )
    calls = {who: sources(records, ids, paths, header) for who, header in authorization.items()}
    for kind, who in dict.fromkeys((k, principal_of(m)) for m, k in measures.items()):
        count = plan.warmup if kind != "create" else max(plan.concurrency, plan.warmup // 5)
        offset = 10_000_000 if kind == "create" else 0
        warm = run_load(
            server.base_url,
            _shifted(calls[who][kind], offset),
            expect=201 if kind == "create" else 200,
            concurrency=plan.concurrency,
            count=count,
            seconds=WARMUP_SECONDS,
            client=plan.client,
        )
        if warm.errors:
            raise RuntimeError(f"{server.spec.name} failed while warming up: {warm.first_error}")
    return calls, len(paths)


def _shifted(source: CallSource, offset: int) -> CallSource:
    return lambda n: source(n + offset)


def run_server(
    spec: ServerSpec,
    records: str,
    plan: Plan,
    ids: list[int],
    authorization: dict[str, str],
    round_: int,
    progress: Callable[[str], None],
    measures: dict[str, str] | None = None,
    pages: int | None = None,
) -> tuple[dict[str, LoadResult], dict[str, Any]]:
    """Start one server, warm it up, run the measures against it, stop it.

    ``measures`` maps each result's name to the kind of request it sends (default:
    every measure of :data:`MEASURES`); ``pages`` is how deep the next-page loads go;
    ``authorization`` holds the header of each principal.
    """
    measures = measures or {m: m for m in MEASURES}
    results: dict[str, LoadResult] = {}
    with serve(spec, log_dir=plan.log_dir) as server:
        facts: dict[str, Any] = {
            "started_in_s": round(server.started_in_s, 2),
            "rss_after_start_mib": rss_mib(server.pid),
        }
        calls, paths = _prepare(server, records, plan, ids, authorization, measures, pages)
        facts["rss_after_warmup_mib"] = rss_mib(server.pid)
        facts["next_page_paths"] = paths
        for measure, kind in measures.items():
            creating = kind == "create"
            call = calls[principal_of(measure)][kind]
            source = _shifted(call, round_ * plan.creates) if creating else call
            result = run_load(
                server.base_url,
                source,
                expect=201 if creating else 200,
                concurrency=plan.concurrency,
                count=plan.creates if creating else None,
                seconds=None if creating else plan.seconds,
                server_pid=server.pid,
                client=plan.client,
            )
            results[measure] = result
            progress(
                f"{spec.name} {measure}: {result.throughput:.0f} req/s, "
                f"p50 {result.percentile(0.5):.1f} ms, p99 {result.percentile(0.99):.1f} ms, "
                f"peak RSS {result.peak_rss_mib or 0:.0f} MiB"
                + (f", {result.errors} ERRORS: {result.first_error}" if result.errors else "")
            )
    return results, facts


def profile_server(
    spec: ServerSpec,
    records: str,
    plan: Plan,
    ids: list[int],
    authorization: dict[str, str],
    output: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Each measure again on a fresh server, with py-spy sampling it (untimed figures)."""
    profiles: dict[str, Any] = {}
    with serve(spec, log_dir=plan.log_dir) as server:
        every, _ = _prepare(server, records, plan, ids, authorization)
        calls = every["admin"]
        for measure in MEASURES:
            raw = output.with_name(f"{output.name}-{spec.name}-{measure}.txt")
            recorder = spy.start_recording(server.pid, plan.profile_seconds, raw)
            time.sleep(0.5)  # py-spy attaches
            creating = measure == "create"
            result = run_load(
                server.base_url,
                _shifted(calls[measure], 20_000_000) if creating else calls[measure],
                expect=201 if creating else 200,
                concurrency=plan.concurrency,
                seconds=plan.profile_seconds - 1,
                server_pid=server.pid,
                client=plan.client,
            )
            _, problem = recorder.communicate(timeout=plan.profile_seconds + 60)
            if recorder.returncode != 0 or not raw.exists():
                progress(f"py-spy failed on {measure}: {problem.decode(errors='replace')[-500:]}")
                continue
            summary = spy.summarise(raw)
            profiles[measure] = {
                "requests": result.requests,
                "throughput_while_sampled": round(result.throughput, 1),
                "server_cpu_ms_per_request": result.server_cpu_ms_per_request,
                "gil_ms_per_request": round(
                    summary["samples"] / spy.RATE * 1000 / max(result.requests, 1), 3
                ),
                "raw_file": raw.name,
                **summary,
            }
            progress(
                f"profiled {spec.name} {measure}: {summary['samples']} samples, "
                f"{profiles[measure]['gil_ms_per_request']:.2f} ms of Python per request"
            )
    return profiles


# -- one database -------------------------------------------------------------------------------


def run_backend(backend: str, plan: Plan, pg_url: str, profile_path: Path | None) -> dict[str, Any]:
    started = time.perf_counter()

    def progress(message: str) -> None:
        log(f"{backend}: {message}")

    out: dict[str, Any] = {}
    with fresh_workspace(backend, pg_url=pg_url) as workspace:
        sides = records_setup.sides_for(workspace)
        if workspace.is_sqlite:
            out["sqlite"] = sqlite_facts(workspace.sqlite_path)
        records_setup.publish_entity(workspace)
        records_setup.create_baseline(sides)
        authorization = records_setup.create_credentials(sides)
        began = time.perf_counter()
        out["fill_seconds"] = {
            k: round(v, 1) for k, v in records_setup.fill(sides, plan.rows).items()
        }
        counts = records_setup.row_counts(sides)
        if set(counts.values()) != {plan.rows}:
            raise RuntimeError(f"expected {plan.rows} rows on each side, found {counts}")
        progress(
            f"loaded {plan.rows:,} rows into each table in {time.perf_counter() - began:.0f} s"
        )
        progress(f"settled: {records_setup.settle_both(sides)}")
        out["plans"] = records_setup.list_plans(sides)
        low, high = records_setup.id_range(sides)
        chooser = random.Random(20261123)
        ids = [chooser.randint(low, high) for _ in range(100_000)]
        workspace.dispose()

        specs = server_specs(sides)
        runs: dict[str, list[dict[str, LoadResult]]] = {side: [] for side in SIDES}
        facts: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
        meter = CpuMeter()
        meter.start()

        def rounds(measures: dict[str, str] | None, pages: int | None) -> None:
            for round_ in range(plan.rounds):
                order = SIDES if round_ % 2 == 0 else tuple(reversed(SIDES))
                wanted = measures
                if measures is None and round_ == 0:
                    wanted = {**{m: m for m in MEASURES}, **ROLE_MEASURES}
                for side in order:
                    records = FORMLOOM_RECORDS if side == "formloom" else BASELINE_RECORDS
                    progress(f"round {round_ + 1}/{plan.rounds}: {side}")
                    found, server_facts = run_server(
                        specs[side],
                        records,
                        plan,
                        ids,
                        authorization[side],
                        round_,
                        progress,
                        wanted,
                        pages,
                    )
                    if measures is None:
                        runs[side].append(found)
                        facts[side].append(server_facts)
                    else:
                        runs[side][round_].update(found)

        rounds(None, None)
        if plan.composite:
            took = records_setup.add_composite_index(sides)
            out["composite_index_seconds"] = {k: round(v, 1) for k, v in took.items()}
            progress(f"indexed (stage, close_date) on both sides: {took}")
            records_setup.settle_both(sides)
            out["plans_composite_index"] = records_setup.list_plans(sides)
            workspace.dispose()
            rounds(INDEXED_MEASURES, plan.deep_pages)
        out["cpu"] = meter.stop()
        out["final_rows"] = records_setup.row_counts(sides)
        workspace.dispose()
        names = [*MEASURES, *ROLE_MEASURES, *(INDEXED_MEASURES if plan.composite else ())]
        out["measures"] = {
            measure: {
                side: {
                    **merge([r[measure] for r in runs[side] if measure in r]).as_dict(),
                    "rounds": [r[measure].as_dict() for r in runs[side] if measure in r],
                }
                for side in SIDES
            }
            for measure in names
        }
        out["servers"] = facts
        if profile_path is not None:
            progress("profiling both servers with py-spy")
            out["profile"] = {
                side: profile_server(
                    specs[side],
                    FORMLOOM_RECORDS if side == "formloom" else BASELINE_RECORDS,
                    plan,
                    ids,
                    authorization[side],
                    profile_path.with_name(f"{profile_path.name}-{backend}"),
                    progress,
                )
                for side in SIDES
            }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


# -- the command --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.records",
        description="Records over HTTP: formloom vs a hand-written FastAPI + SQLAlchemy app, "
        "on SQLite and PostgreSQL, in the same run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 10,000 rows, short loads"
    )
    parser.add_argument("--rows", type=_count, help="rows in each table (default 1,000,000)")
    parser.add_argument("--creates", type=_count, help="creates per server and round (3,000)")
    parser.add_argument("--seconds", type=float, help="seconds of each read/list load (15)")
    parser.add_argument("--rounds", type=_count, help="rounds, servers in ABBA order (2)")
    parser.add_argument("--concurrency", type=_count, default=8, help="client workers (8)")
    parser.add_argument(
        "--next-pages", type=_count, default=10, help="list next pages: pages 2..N (10)"
    )
    parser.add_argument(
        "--deep-pages",
        type=_count,
        default=50,
        help="with the (stage, close_date) index, next pages go to page N (50)",
    )
    parser.add_argument(
        "--no-composite-index",
        dest="composite",
        action="store_false",
        help="skip the list loads with an index on (stage, close_date)",
    )
    parser.add_argument(
        "--warmup",
        type=_count,
        default=200,
        help=f"warm-up requests of each kind, at most {WARMUP_SECONDS:g} s each (200)",
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="sqlite,postgresql (default both)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, sample a formloom server with py-spy under each load",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=10.0, help="seconds per profiled load (10)"
    )
    parser.add_argument(
        "--client",
        choices=("asyncio", "httpx"),
        default="asyncio",
        help="load generator: plain asyncio streams (default) or httpx (about 12 times more "
        "client CPU per request)",
    )
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    parser.add_argument("--write-docs", action="store_true", help=f"refresh {DOCS_PAGE.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
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
    if args.next_pages < 2:
        parser.error("--next-pages must be at least 2")
    return args


def _count(value: str) -> int:
    number = int(value.replace("_", "").replace(",", ""))
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def sqlite_facts(path: Path) -> dict[str, Any]:
    raw = sqlite3.connect(path)
    try:
        synchronous = raw.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        raw.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    try:
        found = subprocess.run(
            ["df", "--output=fstype", str(path.parent)], capture_output=True, text=True, check=True
        )
        filesystem = found.stdout.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        filesystem = "unknown"
    return {"synchronous": names.get(synchronous, str(synchronous)), "filesystem": filesystem}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder: Path = args.results_dir
    folder.mkdir(parents=True, exist_ok=True)
    load = load_average()
    if load and load[0] > BUSY_LOAD:
        log(f"WARNING: load average {load[0]:.2f} on {os.cpu_count()} CPUs: timings will be skewed")
    if args.profile and spy.py_spy() is None:
        log("--profile needs py-spy: .venv/bin/pip install py-spy")
        return 2
    plan = Plan(
        rows=args.rows,
        creates=args.creates,
        seconds=args.seconds,
        rounds=args.rounds,
        concurrency=args.concurrency,
        next_pages=args.next_pages,
        deep_pages=args.deep_pages,
        composite=args.composite,
        warmup=args.warmup,
        profile_seconds=args.profile_seconds,
        client=args.client,
        log_dir=folder / f"records-{stamp}-logs",
    )
    pg_url = args.pg_url or postgres_url()
    results: dict[str, Any] = {
        "benchmark": "records",
        "machine": machine_facts(),
        "code": code_facts(ROOT),
        "options": {
            "argv": " ".join(argv),
            **{k: v for k, v in plan.__dict__.items() if k != "log_dir"},
        },
        "databases": {},
        "backends": {},
        "not_run": {},
    }
    for backend in args.backends:
        if backend == "postgresql":
            problem = postgres_problem(pg_url)
            if problem:
                reason = f"PostgreSQL at {pg_url} is not reachable ({problem})"
                log(f"NOT RUN: {reason}")
                results["not_run"][backend] = reason
                continue
            results["databases"][backend] = postgres_facts(pg_url)
        if args.wait_quiet:
            wait_until_quiet(args.wait_quiet, log)
        log(f"{backend}: starting")
        profile_path = folder / f"records-{stamp}-pyspy" if args.profile else None
        data = run_backend(backend, plan, pg_url, profile_path)
        if "sqlite" in data:
            results["databases"][backend] = data.pop("sqlite")
        results["backends"][backend] = data
        log(f"{backend}: done in {data['seconds']:.0f} s")
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_after"] = load_average()
    results["summary"] = records_report.summarise(results)

    print(records_report.markdown(results))
    print()
    print(records_report.machine_lines(results))
    for backend, data in results["backends"].items():
        if "profile" in data:
            print(records_report.profile_text(backend, data["profile"]))
    text = json.dumps(results, indent=2, ensure_ascii=False, default=str)
    path = folder / f"records-{stamp}.json"
    path.write_text(text + "\n", encoding="utf-8")
    (folder / "records-latest.json").write_text(text + "\n", encoding="utf-8")
    log(f"results: {path}")
    if args.write_docs:
        records_report.write_docs(results, DOCS_PAGE)
        log(f"updated {DOCS_PAGE.relative_to(ROOT)}")
    if args.check and (results["not_run"] or not records_report.all_passed(results)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
