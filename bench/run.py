"""Run the benchmarks: ``make bench`` or ``python -m bench.run [options]``.

Prints the result tables, writes the results as JSON under ``bench/results/``
(git-ignored) and, with ``--write-docs``, refreshes the results block of
``docs/benchmarks.md``. See that page for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backends import BACKENDS, fresh_workspace, postgres_problem, postgres_url
from bench.machine import (
    code_facts,
    load_average,
    machine_facts,
    postgres_facts,
    wait_until_quiet,
)
from bench.report import all_passed, machine_lines, markdown_tables, summarise, write_docs
from bench.schema_change import Plan, deal_fields, run_backend

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"

FULL = {"rows": 1_000_000, "repeat": 9}
QUICK = {"rows": 20_000, "repeat": 3}
#: A 1-minute load average above this at the start gets a warning.
BUSY_LOAD = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="formloom schema-change benchmarks on SQLite and PostgreSQL "
        "(formloom vs the raw database, in the same run).",
    )
    parser.add_argument(
        "--rows", type=_count, help="rows of the big table (default 1,000,000; --quick: 20,000)"
    )
    parser.add_argument(
        "--small-rows", type=_count, default=1_000, help="rows of the small table (default 1,000)"
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated: sqlite,postgresql (default both)",
    )
    parser.add_argument("--repeat", type=_count, help="timed rounds (default 9; --quick: 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed first rounds, reported apart (default 1)"
    )
    parser.add_argument(
        "--wide-fields", type=_count, default=200, help="fields of the wide entity (default 200)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile N add-field and N 200-field publishes (SQL log, phase timers, cProfile)",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"refresh the results in {DOCS_PAGE.name}"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each database, wait up to SECONDS for the CPUs to be idle (default 0)",
    )
    parser.add_argument(
        "--docs-from",
        type=Path,
        metavar="JSON",
        help="run nothing: write the results of an earlier run (a results JSON) into the docs",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 when a target fails or a database could not be used",
    )
    parser.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL URL (default $FORMLOOM_BENCH_POSTGRES_URL, "
        "$FORMLOOM_TEST_POSTGRES_URL or the local test database)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="where JSON results go (bench/results)"
    )
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.rows = args.rows or preset["rows"]
    args.repeat = args.repeat or preset["repeat"]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; use {', '.join(BACKENDS)}")
    if args.rows <= args.small_rows:
        parser.error(f"--rows ({args.rows}) must be larger than --small-rows ({args.small_rows})")
    if args.warmup < 0 or args.profile < 0:
        parser.error("--warmup and --profile cannot be negative")
    return args


def _count(value: str) -> int:
    number = int(value.replace("_", "").replace(",", ""))
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.docs_from:
        earlier = json.loads(args.docs_from.read_text(encoding="utf-8"))
        write_docs(earlier, DOCS_PAGE)
        log(f"updated {DOCS_PAGE.relative_to(ROOT)} from {args.docs_from}")
        return 0
    started = time.perf_counter()
    load = load_average()
    if load and load[0] > BUSY_LOAD:
        log(
            f"WARNING: load average {load[0]:.2f} on {os.cpu_count()} CPUs: other work is "
            "running and will skew the timings"
        )
    pg_url = args.pg_url or postgres_url()
    plan = Plan(
        sizes=(args.small_rows, args.rows),
        repeat=args.repeat,
        warmup=args.warmup,
        wide_fields=args.wide_fields,
        profile_rounds=args.profile,
    )
    results: dict[str, Any] = {
        "benchmark": "schema-change",
        "machine": machine_facts(),
        "code": code_facts(ROOT),
        "databases": {},
        "options": {
            "argv": " ".join(argv),
            "rows": args.rows,
            "small_rows": args.small_rows,
            "repeat": args.repeat,
            "warmup": args.warmup,
            "wide_fields": args.wide_fields,
            "base_fields": len(deal_fields()),
        },
        "backends": {},
        "not_run": {},
    }
    profiles: dict[str, list[dict[str, Any]]] = {}
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
        with fresh_workspace(backend, pg_url=pg_url) as workspace:
            if workspace.is_sqlite:
                results["databases"][backend] = _sqlite_facts(workspace.sqlite_path)
            outcome = run_backend(workspace, backend, plan, log)
        data = outcome.as_dict()
        data["summary"] = summarise(data)
        results["backends"][backend] = data
        if outcome.profiles:
            profiles[backend] = outcome.profiles
        log(f"{backend}: done in {outcome.seconds:.0f} s")
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_after"] = load_average()

    print(markdown_tables(results))
    print()
    print(machine_lines(results))
    path = _save(results, profiles, args.results_dir)
    for backend, found in profiles.items():
        for profile in found:
            _print_profile(backend, profile)
    log(f"results: {path}")
    if args.write_docs:
        write_docs(results, DOCS_PAGE)
        log(f"updated {DOCS_PAGE.relative_to(ROOT)}")
    if args.check and (results["not_run"] or not all_passed(results)):
        return 1
    return 0


def _sqlite_facts(path: Path) -> dict[str, Any]:
    raw = sqlite3.connect(path)
    try:
        synchronous = raw.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        raw.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"synchronous": names.get(synchronous, synchronous), "filesystem": _filesystem(path)}


def _filesystem(path: Path) -> str:
    try:
        found = subprocess.run(
            ["df", "--output=fstype", str(path.parent)], capture_output=True, text=True, check=True
        )
        return found.stdout.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def _save(results: dict[str, Any], profiles: dict[str, list[dict[str, Any]]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results["profiles"] = {}
    for backend, found in profiles.items():
        saved = []
        for number, profile in enumerate(found, 1):
            prof_path = folder / f"schema-change-{stamp}-{backend}-{number}.prof"
            profile["stats"].dump_stats(prof_path)
            kept = {k: v for k, v in profile.items() if k != "stats"}
            saved.append({**kept, "pstats_file": prof_path.name})
        results["profiles"][backend] = saved
    path = folder / f"schema-change-{stamp}.json"
    text = json.dumps(results, indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    (folder / "schema-change-latest.json").write_text(text + "\n", encoding="utf-8")
    return path


def _print_profile(backend: str, profile: dict[str, Any]) -> None:
    print(f"\n## Profile: {backend}, {profile['label']} ({profile['rounds']} publishes)")
    print(
        f"wall {profile['wall_ms_per_publish']:.2f} ms per publish without the profiler; SQL "
        f"execute {profile['sql_ms_per_publish']:.2f} ms in "
        f"{profile['statements_per_publish']:.0f} statements (commit not included):"
    )
    for statement in profile["statements"]:
        print(f"  {statement['ms']:8.3f} ms  {statement['sql']}")
    print(
        f"The engine's validation of the last document alone (no profiler): "
        f"{profile['validate_ms']:.2f} ms"
    )
    print(
        f"\nTimed by wrappers, no profiler (nested phases overlap), ms per publish of "
        f"{profile['timed_phases_wall_ms']:.2f} ms:"
    )
    for phase in profile["timed_phases"]:
        print(f"  {phase['ms']:8.2f} ms  {phase['phase']}")
    print("\nUnder cProfile (inflates Python more than I/O), cumulative ms per publish:")
    for phase in profile["phases"]:
        print(f"  {phase['ms']:8.2f} ms  {phase['share']:6.1%}  {phase['phase']}")
    print(profile["cprofile"])


if __name__ == "__main__":
    sys.exit(main())
