"""Turn benchmark results into targets (PASS/FAIL), Markdown tables and the docs page."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

#: The issue's targets for adding a nullable field.
MAX_SCALE = 2.0
MAX_OVERHEAD = 3.0

DOCS_START = "<!-- bench:schema-change:start -->"
DOCS_END = "<!-- bench:schema-change:end -->"
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def summarise(backend: dict[str, Any]) -> dict[str, Any]:
    """The ratios of one backend's results and whether they meet the targets."""
    small, large = backend["add_field"][0], backend["add_field"][-1]
    f_small, f_large = small["formloom"]["median_ms"], large["formloom"]["median_ms"]
    r_small, r_large = small["raw_alter"]["median_ms"], large["raw_alter"]["median_ms"]
    wide = backend["wide_entity"]
    rewrites = sum(s["table_rewrites_detected"] for s in backend["add_field"])
    checked = sum(s["publishes_checked_for_rewrite"] for s in backend["add_field"])
    scale = _ratio(f_large, f_small)
    overhead_large = _ratio(f_large, r_large)
    overhead_small = _ratio(f_small, r_small)
    return {
        "small_rows": small["rows"],
        "large_rows": large["rows"],
        "formloom_scale": scale,
        "raw_scale": _ratio(r_large, r_small),
        "overhead_large": overhead_large,
        "overhead_small": overhead_small,
        "wide_overhead": _ratio(wide["formloom"]["median_ms"], wide["raw_create"]["median_ms"]),
        "rewrites": rewrites,
        "rewrite_checks": checked,
        "checks": [
            _check(f"formloom at {large['rows']:,} ÷ at {small['rows']:,} rows", scale, MAX_SCALE),
            _check(f"formloom ÷ raw ALTER at {large['rows']:,} rows", overhead_large, MAX_OVERHEAD),
            _check(f"formloom ÷ raw ALTER at {small['rows']:,} rows", overhead_small, MAX_OVERHEAD),
            {
                "what": "table rewrites during formloom publishes",
                "value": f"{rewrites} of {checked}",
                "target": "0",
                "passed": rewrites == 0,
            },
        ],
    }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.inf


def _check(what: str, value: float, limit: float) -> dict[str, Any]:
    return {
        "what": what,
        "value": f"{value:.2f}",
        "target": f"≤ {limit:g}",
        "passed": value <= limit,
    }


def all_passed(results: dict[str, Any]) -> bool:
    return all(
        check["passed"]
        for backend in results["backends"].values()
        for check in backend["summary"]["checks"]
    )


def _ms(samples: dict[str, Any]) -> str:
    return f"{samples['median_ms']:.1f} ({samples['min_ms']:.1f}–{samples['max_ms']:.1f})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_tables(results: dict[str, Any]) -> str:
    """The three result tables (add field, targets, wide entity) as Markdown."""
    backends = results["backends"]
    add_rows, check_rows, wide_rows = [], [], []
    for name, backend in backends.items():
        label = NAMES.get(name, name)
        summary = backend["summary"]
        for size in backend["add_field"]:
            add_rows.append(
                [
                    label,
                    f"{size['rows']:,}",
                    _ms(size["formloom"]),
                    _ms(size["raw_alter"]),
                    f"{_ratio(size['formloom']['median_ms'], size['raw_alter']['median_ms']):.1f}×",
                ]
            )
        for check in summary["checks"]:
            verdict = "PASS" if check["passed"] else "**FAIL**"
            check_rows.append([label, check["what"], check["value"], check["target"], verdict])
        wide = backend["wide_entity"]
        wide_rows.append(
            [
                label,
                str(wide["fields"]),
                _ms(wide["formloom"]),
                _ms(wide["raw_create"]),
                f"{summary['wide_overhead']:.1f}×",
            ]
        )
    options = results["options"]
    first = options["base_fields"] + 1
    last = options["base_fields"] + options["warmup"] + options["repeat"]
    parts = [
        f"Adding one nullable text field — median ms (min–max) of {options['repeat']} rounds "
        f"(the entity has {first} fields after the first round, {last} after the last):",
        "",
        _table(
            [
                "database",
                "rows",
                "formloom publish",
                "raw ALTER … ADD COLUMN",
                "formloom ÷ raw",
            ],
            add_rows,
        ),
        "",
        "Targets:",
        "",
        _table(["database", "measure", "value", "target", "result"], check_rows),
        "",
        "Publishing a new entity with many fields — median ms (min–max):",
        "",
        _table(
            ["database", "fields", "formloom publish", "raw CREATE TABLE", "formloom ÷ raw"],
            wide_rows,
        ),
    ]
    for name, reason in results.get("not_run", {}).items():
        parts += ["", f"**{NAMES.get(name, name)} NOT RUN**: {reason}"]
    return "\n".join(parts)


def machine_lines(results: dict[str, Any]) -> str:
    m = results["machine"]
    command = " ".join(["python -m bench.run", results["options"]["argv"]]).strip()
    code = results["code"]
    changes = len(code["uncommitted"])
    state = f" + {changes} uncommitted file(s)" if changes else ""
    lines = [
        f"- Run: {m['date']}, `{command}`, code at commit {code['commit']}{state}",
        f"- Machine: {m['cpus']} CPUs ({m['cpus_usable']} usable, `nproc`), {m['cpu_model']}, "
        f"{m['memory_gib']} GiB RAM, {m['os']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, SQLAlchemy {m['sqlalchemy']}, "
        f"Alembic {m['alembic']}, psycopg {m['psycopg']}, pydantic {m['pydantic']}",
    ]
    sqlite = results["databases"].get("sqlite")
    if sqlite:
        lines.append(
            f"- SQLite: WAL, synchronous={sqlite['synchronous']}, files on {sqlite['filesystem']}"
        )
    pg = results["databases"].get("postgresql")
    if pg:
        lines.append(
            f"- PostgreSQL {pg['postgresql']} on 127.0.0.1 (fsync={pg['fsync']}, "
            f"synchronous_commit={pg['synchronous_commit']}, shared_buffers={pg['shared_buffers']})"
        )
    for name, backend in results["backends"].items():
        for part, cpu in backend.get("cpu", {}).items():
            if not cpu:
                continue
            what = "adding fields" if part == "add_field" else "publishing wide entities"
            server = " (the PostgreSQL server included)" if name == "postgresql" else ""
            lines.append(
                f"- CPU while {NAMES.get(name, name)} was {what} (timed rounds): all CPUs "
                f"{cpu['machine_busy']:.0%} busy; this process {cpu['this_process']:.0%}, "
                f"everything else {cpu['others']:.0%}{server}; I/O wait {cpu['iowait']:.0%}"
            )
    before = m.get("load_average") or ["?"]
    after = m.get("load_average_after") or ["?"]
    parts = ", ".join(
        f"{NAMES.get(name, name)} {backend['seconds']:.0f} s"
        for name, backend in results["backends"].items()
    )
    lines.append(
        f"- Whole run: {results['wall_seconds']:.0f} s ({parts}; the rest is start-up and any "
        f"waiting for a quiet machine); 1-minute load average {before[0]} before, "
        f"{after[0]} after"
    )
    return "\n".join(lines)


def write_docs(results: dict[str, Any], page: Path) -> None:
    """Replace the generated block of the docs page with these results."""
    block = f"{DOCS_START}\n{machine_lines(results)}\n\n{markdown_tables(results)}\n{DOCS_END}"
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if DOCS_START in current and DOCS_END in current:
        pattern = re.compile(re.escape(DOCS_START) + ".*?" + re.escape(DOCS_END), re.S)
        updated = pattern.sub(lambda _m: block, current)
    else:
        updated = current.rstrip() + "\n\n## Results: schema changes\n\n" + block + "\n"
    page.write_text(updated, encoding="utf-8")
