"""Import of a CSV with validation vs a raw ``executemany`` of the same rows (issue 3 §5).

For each database a fresh workspace gets the ``opportunity`` entity of the
baseline (name, amount, stage, close_date, owner). The raw side inserts the
rows, already typed (what a hand-written loader would do after parsing), with
one SQLAlchemy Core ``executemany`` in one transaction, system columns filled.
The formloom side imports the same rows from a CSV file through
:func:`formloom.platform.record_import.submit_import` and ``run_import`` (the
job's work, without the worker's polling): store the upload, detect and decode
it, match the columns, adapt and validate every cell, write in batches with
the audit log. Each side runs into an empty table; the target is formloom ≥ 0.3 ×
raw rows/s.

The sides alternate (raw, import all-or-nothing, import skip-bad-rows, raw, …)
and the report gives the median of each, so that a busy machine slows both
alike. Rows/s use wall-clock time; for SQLite (the database runs in the
process) the CPU time of the process is reported too.

    python -m bench.import_records [--rows 100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert

from bench.backends import fresh_workspace, postgres_problem, postgres_url
from formloom.platform import record_import
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.environments import PRODUCTION
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.principal import SYSTEM
from formloom.platform.tables import audit

STAGES = ("prospect", "proposal", "won", "lost")
MODES = ("all_or_nothing", "skip_bad_rows")
OPPORTUNITY = {
    "name": "opportunity",
    "label": {"en": "Opportunity", "zh": "商机"},
    "title_field": "name",
    "fields": [
        {"name": "name", "label": {"en": "Name", "zh": "名称"}, "type": "text", "required": True},
        {"name": "amount", "label": {"en": "Amount", "zh": "金额"}, "type": "currency"},
        {
            "name": "stage",
            "label": {"en": "Stage", "zh": "阶段"},
            "type": "single_select",
            "options": {"choices": [{"value": s, "label": {"en": s, "zh": s}} for s in STAGES]},
        },
        {"name": "close_date", "label": {"en": "Close date", "zh": "结束日期"}, "type": "date"},
        {"name": "owner", "label": {"en": "Owner", "zh": "负责人"}, "type": "user"},
    ],
}


def rows(count: int) -> Iterator[tuple[str, str, str, str, str]]:
    for i in range(count):
        yield (
            f"Opportunity {i}",
            f"{(i * 37) % 1_000_000}.{i % 100:02d}",
            STAGES[i % 4],
            date(2026, 1 + i % 12, 1 + i % 28).isoformat(),
            str(1 + i % 50),
        )


def csv_file(count: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "amount", "stage", "close_date", "owner"])
    writer.writerows(rows(count))
    return buffer.getvalue().encode()


def raw_executemany(workspace: Workspace, count: int) -> tuple[float, float]:
    """Wall and CPU seconds of one executemany of ``count`` typed rows (system columns filled)."""
    now = datetime.now(UTC)
    typed = [
        {
            "name": name,
            "amount": Decimal(amount),
            "stage": stage,
            "close_date": date.fromisoformat(close),
            "owner": int(owner),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for name, amount, stage, close, owner in rows(count)
    ]
    with workspace.begin(PRODUCTION, readonly=True) as conn:
        table = load_entity(
            conn, namespace=workspace.cache_key, env=PRODUCTION, name="opportunity"
        ).table
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    with workspace.begin(PRODUCTION) as conn:
        conn.execute(insert(table), typed)
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    with workspace.begin(PRODUCTION) as conn:
        conn.execute(delete(table))
    return elapsed


def formloom_import(workspace: Workspace, content: bytes, mode: str) -> tuple[float, float]:
    """Wall and CPU seconds to import the CSV (upload stored, checked, written with audit)."""
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    submitted = record_import.submit_import(
        workspace,
        env=PRODUCTION,
        entity="opportunity",
        upload=io.BytesIO(content),
        file_name="opportunities.csv",
        options={"mode": mode},
        principal=SYSTEM,
    )
    record_import.run_import(workspace, env=PRODUCTION, import_id=submitted["id"])
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    found = record_import.get_import(
        workspace, env=PRODUCTION, import_id=submitted["id"], principal=SYSTEM
    )
    summary = found["summary"]
    assert summary["error_count"] == 0 and summary["written"], summary
    with workspace.begin(PRODUCTION, readonly=True) as conn:
        table = load_entity(
            conn, namespace=workspace.cache_key, env=PRODUCTION, name="opportunity"
        ).table
    with workspace.begin(PRODUCTION) as conn:
        conn.execute(delete(table))
        conn.execute(delete(audit))
    return elapsed


def measure(backend: str, count: int, repeat: int) -> dict[str, Any]:
    with fresh_workspace(backend, pg_url=postgres_url()) as workspace:
        document = SourceDocument("entity", OPPORTUNITY, "opportunity.json")
        MetaStore(workspace).apply(PRODUCTION, [document], PublishOptions())
        content = csv_file(count)
        samples: dict[str, list[tuple[float, float]]] = {"raw": [], **{m: [] for m in MODES}}
        for _ in range(repeat):
            samples["raw"].append(raw_executemany(workspace, count))
            for mode in MODES:
                samples[mode].append(formloom_import(workspace, content, mode))
        wall = {k: statistics.median(s[0] for s in v) for k, v in samples.items()}
        cpu = {k: statistics.median(s[1] for s in v) for k, v in samples.items()}
        results: dict[str, Any] = {"rows": count, "raw_rows_per_s": count / wall["raw"]}
        for mode in MODES:
            results[f"{mode}_rows_per_s"] = count / wall[mode]
            results[f"{mode}_ratio"] = wall["raw"] / wall[mode]
            results[f"{mode}_cpu_ratio"] = cpu["raw"] / cpu[mode]
        return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="median of N runs")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    report = {}
    for backend in args.backends.split(","):
        if backend == "postgresql" and (problem := postgres_problem(postgres_url())):
            print(f"postgresql skipped: {problem}")
            continue
        report[backend] = measure(backend, args.rows, args.repeat)
        figures = report[backend]
        print(
            f"{backend}: raw executemany {figures['raw_rows_per_s']:,.0f} rows/s; import "
            f"all_or_nothing {figures['all_or_nothing_rows_per_s']:,.0f} rows/s "
            f"({figures['all_or_nothing_ratio']:.2f}x, CPU "
            f"{figures['all_or_nothing_cpu_ratio']:.2f}x), skip_bad_rows "
            f"{figures['skip_bad_rows_rows_per_s']:,.0f} rows/s "
            f"({figures['skip_bad_rows_ratio']:.2f}x)",
            flush=True,
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
