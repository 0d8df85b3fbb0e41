"""Records benchmark results as ratios, targets (PASS/FAIL), Markdown and the docs block."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

DOCS_START = "<!-- bench:records:start -->"
DOCS_END = "<!-- bench:records:end -->"
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
LABELS = {
    "create": "create (POST, one record)",
    "read": "read by id",
    "list": "list, first page",
    "list_next": "list, next pages",
    "create_role": "create, non-admin (role with scope all)",
    "read_role": "read by id, non-admin (role with scope all)",
    "list_role": "list, first page, non-admin (role with scope all)",
    "list_ix": "list, first page, index (stage, close_date)",
    "list_next_ix": "list, next pages, index (stage, close_date)",
}
#: Issue 3 §5: formloom ≥ 0.7 × the baseline's throughput for every measure.
ISSUE_TARGET = 0.7
#: docs/reference/peers-performance.md: reads ≥ 0.8 ×, peak memory under 150 MiB.
PEERS_READ_TARGET = 0.8
PEERS_MEMORY_MIB = 150.0
READS = ("read", "list", "list_next", "list_ix", "list_next_ix", "read_role", "list_role")
MEASURE_ORDER = ("create", "read", "list", "list_next")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.inf


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per database: each measure's ratio and the target checks."""
    summary: dict[str, Any] = {}
    for backend, data in results["backends"].items():
        rows, checks = [], []
        peak = 0.0
        for measure, sides in data["measures"].items():
            base, form = sides["baseline"], sides["formloom"]
            ratio = _ratio(form["throughput"], base["throughput"])
            rows.append({"measure": measure, "ratio": round(ratio, 3)})
            errors = base["errors"] + form["errors"]
            checks.append(
                {
                    "what": f"{LABELS[measure]}: formloom ÷ baseline req/s",
                    "value": f"{ratio:.2f}",
                    "target": f"≥ {ISSUE_TARGET} (issue 3)",
                    "passed": ratio >= ISSUE_TARGET and errors == 0,
                }
            )
            if measure in READS:
                checks.append(
                    {
                        "what": f"{LABELS[measure]}: formloom ÷ baseline req/s",
                        "value": f"{ratio:.2f}",
                        "target": f"≥ {PEERS_READ_TARGET} (peers bar)",
                        "passed": ratio >= PEERS_READ_TARGET and errors == 0,
                    }
                )
            peak = max(peak, form["peak_rss_mib"] or 0.0)
        checks.append(
            {
                "what": "formloom peak server RSS (MiB)",
                "value": f"{peak:.0f}",
                "target": f"< {PEERS_MEMORY_MIB:.0f} (peers bar)",
                "passed": peak < PEERS_MEMORY_MIB,
            }
        )
        summary[backend] = {"ratios": rows, "checks": checks}
    return summary


def all_passed(results: dict[str, Any]) -> bool:
    return all(c["passed"] for s in results["summary"].values() for c in s["checks"])


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _latency(side: dict[str, Any]) -> str:
    return f"{side['p50_ms']:.1f} / {side['p99_ms']:.1f}"


def _rps(side: dict[str, Any]) -> str:
    text = f"{side['throughput']:,.0f}"
    return text + (f" ({side['errors']} errors)" if side["errors"] else "")


def _mib(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def markdown(results: dict[str, Any]) -> str:
    """Throughput and latency, memory, and target tables."""
    options = results["options"]
    speed, memory, checks = [], [], []
    for backend, data in results["backends"].items():
        label = NAMES.get(backend, backend)
        for measure, sides in data["measures"].items():
            base, form = sides["baseline"], sides["formloom"]
            ratio = _ratio(form["throughput"], base["throughput"])
            speed.append(
                [
                    label,
                    LABELS[measure],
                    _rps(base),
                    _rps(form),
                    f"**{ratio:.2f}×**",
                    _latency(base),
                    _latency(form),
                ]
            )
            memory.append(
                [label, LABELS[measure], _mib(base["peak_rss_mib"]), _mib(form["peak_rss_mib"])]
            )
        servers = data["servers"]
        memory.append(
            [
                label,
                "idle, after start",
                _mib(max(f["rss_after_start_mib"] or 0 for f in servers["baseline"])),
                _mib(max(f["rss_after_start_mib"] or 0 for f in servers["formloom"])),
            ]
        )
        for check in results["summary"][backend]["checks"]:
            verdict = "PASS" if check["passed"] else "**FAIL**"
            checks.append([label, check["what"], check["value"], check["target"], verdict])
    speed.append(
        [
            "both",
            "import of a 100,000-row CSV",
            "—",
            "—",
            "see the import benchmark",
            "target ≥ 0.3 × raw `executemany`",
            "(measured separately)",
        ]
    )
    rows = options["rows"]
    parts = [
        f"Throughput (successful requests per second) and latency p50 / p99 (ms) at "
        f"concurrency {options['concurrency']}, tables of {rows:,} rows, "
        f"{options['rounds']} round(s) per server pooled:",
        "",
        _table(
            [
                "database",
                "measure",
                "baseline req/s",
                "formloom req/s",
                "formloom ÷ baseline",
                "baseline p50 / p99 ms",
                "formloom p50 / p99 ms",
            ],
            speed,
        ),
        "",
        "Peak server memory (RSS, MiB) during each load:",
        "",
        _table(["database", "load", "baseline", "formloom"], memory),
        "",
        "Targets:",
        "",
        _table(["database", "measure", "value", "target", "result"], checks),
    ]
    for name, reason in results.get("not_run", {}).items():
        parts += ["", f"**{NAMES.get(name, name)} NOT RUN**: {reason}"]
    return "\n".join(parts)


def machine_lines(results: dict[str, Any]) -> str:
    m = results["machine"]
    options = results["options"]
    code = results["code"]
    changes = len(code["uncommitted"])
    state = f" + {changes} uncommitted file(s)" if changes else ""
    command = " ".join(["python -m bench.records", options["argv"]]).strip()
    lines = [
        f"- Run: {m['date']}, `{command}`, code at commit {code['commit']}{state}",
        f"- Machine: {m['cpus']} CPUs ({m['cpus_usable']} usable), {m['cpu_model']}, "
        f"{m['memory_gib']} GiB RAM, {m['os']}; Python {m['python']}, SQLite {m['sqlite']}, "
        f"SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}, pydantic {m['pydantic']}",
        f"- Loads: {options['creates']:,} creates, then {options['seconds']:g} s each of reads, "
        f"first pages and next pages (pages 2–{options['next_pages']}), per server and round, "
        f"after up to {options['warmup']} warm-up requests (at most 3 s) of each kind; "
        "in the first round also creates, reads and first pages by a non-admin user "
        "(formloom: a role with scope all)"
        + (
            f"; then an index on (stage, close_date) on both sides and {options['seconds']:g} s "
            f"each of first pages and next pages (pages 2–{options['deep_pages']})"
            if options.get("composite")
            else ""
        ),
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
    for backend, data in results["backends"].items():
        cpu = data.get("cpu") or {}
        fill = data["fill_seconds"]
        client = [
            side["client_cpu_share"]
            for sides in data["measures"].values()
            for side in sides.values()
            if side["client_cpu_share"] is not None
        ]
        lines.append(
            f"- {NAMES.get(backend, backend)}: {data['seconds']:.0f} s in all; loading the rows "
            f"took {fill['formloom']:.0f} s (formloom's table) and {fill['baseline']:.0f} s "
            f"(baseline's); during the loads all CPUs were {cpu.get('machine_busy', 0):.0%} busy, "
            f"the load generator used {min(client, default=0):.0%}–{max(client, default=0):.0%} "
            "of one CPU"
        )
    before = m.get("load_average") or ["?"]
    after = m.get("load_average_after") or ["?"]
    lines.append(
        f"- Whole run: {results['wall_seconds']:.0f} s; 1-minute load average {before[0]} "
        f"before, {after[0]} after"
    )
    return "\n".join(lines)


def profile_text(backend: str, profile: dict[str, Any], top: int = 12) -> str:
    """The py-spy summaries of one database as plain text: cost per request, then formloom's."""
    out = [f"\n## {NAMES.get(backend, backend)}: where the servers' CPU goes (py-spy --gil)"]
    out.append(
        "measure: server CPU ms per request (process user+system) and Python ms per request "
        "(GIL held), baseline → formloom"
    )
    for measure in MEASURE_ORDER:
        base = profile.get("baseline", {}).get(measure)
        form = profile.get("formloom", {}).get(measure)
        if base is None or form is None:
            continue
        out.append(
            f"  {LABELS[measure]}: CPU {base['server_cpu_ms_per_request']} → "
            f"{form['server_cpu_ms_per_request']} ms; Python {base['gil_ms_per_request']} → "
            f"{form['gil_ms_per_request']} ms"
        )
    for side in ("formloom", "baseline"):
        for measure, found in profile.get(side, {}).items():
            out.append(
                f"\n### {side}, {LABELS[measure]}: {found['samples']} samples, "
                f"{found['throughput_while_sampled']:.0f} req/s while sampled"
            )
            sections = (
                ("innermost app line", "app_lines"),
                ("app function, inclusive", "app_functions"),
                ("package of the running frame", "packages"),
            )
            for title, key in sections if side == "formloom" else sections[2:]:
                out.append(f"{title}:")
                out += [f"  {row['share']:6.1%}  {row['where']}" for row in found[key][:top]]
    return "\n".join(out)


def write_docs(results: dict[str, Any], page: Path) -> None:
    """Replace the records block of the docs page (appended when the page has none)."""
    block = f"{DOCS_START}\n{machine_lines(results)}\n\n{markdown(results)}\n{DOCS_END}"
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if DOCS_START in current and DOCS_END in current:
        pattern = re.compile(re.escape(DOCS_START) + ".*?" + re.escape(DOCS_END), re.S)
        updated = pattern.sub(lambda _m: block, current)
    else:
        updated = current.rstrip() + "\n\n## Records over HTTP: results\n\n" + block + "\n"
    page.write_text(updated, encoding="utf-8")
