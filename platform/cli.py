"""The ``formloom`` command line.

Exit codes: 0 success, 1 invalid documents (every problem printed as
``file: JSON pointer: message``), 2 usage errors (bad options, unknown
environment, kind or document).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from formloom.engine.errors import DocumentInvalid, Issue
from formloom.engine.meta import CheckContext, document_kinds
from formloom.engine.relative_dates import DEFAULT_TIMEZONE
from formloom.platform import environments, record_import
from formloom.platform import jobs as job_queue
from formloom.platform.cli_identity import create_first_admin, roles_group, teams_group, users_group
from formloom.platform.cli_support import fail as _fail
from formloom.platform.cli_support import handles_errors as _handles_errors
from formloom.platform.cli_support import open_workspace as _workspace
from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION
from formloom.platform.jobs import DONE, FAILED, JOB_STATUSES, QUEUED
from formloom.platform.list_request import request_from_query
from formloom.platform.metastore import BatchInvalid, MetaStore, PublishOptions, SourceDocument
from formloom.platform.principal import SYSTEM
from formloom.platform.record_export import export_records
from formloom.platform.settings import Settings
from formloom.platform.worker import Worker

APP_FACTORY = "formloom.designer_api.app:create_app"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data folder (default: $FORMLOOM_DATA_DIR or ./var).",
)
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None) -> None:
    """formloom: a no-code CRM builder. Metadata in, working apps out.

    The database is $FORMLOOM_DATABASE_URL, or an SQLite file in the data folder.
    """
    ctx.ensure_object(dict)
    ctx.obj["settings"] = Settings.from_environment(data_dir=data_dir)


@main.command()
@click.pass_context
@_handles_errors
def init(ctx: click.Context) -> None:
    """Create the data folder, migrate the platform tables and the production environment.

    The first time, also create the administrator `admin` (password from
    $FORMLOOM_ADMIN_PASSWORD, else generated and written to <data dir>/admin-credentials.txt).
    """
    settings: Settings = ctx.obj["settings"]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    workspace = _workspace(ctx)
    click.echo(f"formloom is ready: database {_safe_url(settings.database_url)}")
    click.echo(f"data folder: {settings.data_dir}")
    create_first_admin(workspace, settings)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", "8000")),
    show_default="$PORT or 8000",
    help="Port to listen on.",
)
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, reload: bool) -> None:
    """Serve the platform over HTTP (on SQLite a job worker runs in-process)."""
    import uvicorn

    settings: Settings = ctx.obj["settings"]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FORMLOOM_DATA_DIR"] = str(settings.data_dir)
    click.echo(f"formloom serving on http://{host}:{port} (API docs at /docs)")
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, reload=reload)


@main.command()
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit.")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between polls.")
@click.pass_context
@_handles_errors
def worker(ctx: click.Context, once: bool, poll: float) -> None:
    """Run background jobs of every environment (start any number, on any machine)."""
    job_worker = Worker(_workspace(ctx), poll_interval=poll)
    if once:
        click.echo(f"ran {job_worker.run_once()} job(s)")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo("worker running; stop with Ctrl-C")
    try:
        job_worker.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


main.add_command(users_group)
main.add_command(roles_group)
main.add_command(teams_group)


@main.group()
def jobs() -> None:
    """Inspect and retry background jobs."""


@jobs.command("list")
@click.option("--env", "env_name", default=PRODUCTION, show_default=True, help="Environment.")
@click.option("--failed", is_flag=True, help="Only failed (parked) jobs.")
@click.option("--status", type=click.Choice(JOB_STATUSES), default=None, help="Only this status.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
@_handles_errors
def jobs_list(
    ctx: click.Context, env_name: str, failed: bool, status: str | None, limit: int
) -> None:
    """List jobs, newest first: id, type, status, attempts, due time, last error."""
    wanted = FAILED if failed else status
    for j in job_queue.list_jobs(_workspace(ctx), env_name, status=wanted, limit=limit):
        error = (j["last_error"] or "").splitlines()[0] if j["last_error"] else ""
        click.echo(
            f"{j['id']}\t{j['job_type']}\t{j['status']}\t{j['attempts']}/{j['max_attempts']}"
            f"\t{j['run_at']}\t{error}"
        )


@jobs.command("show")
@click.argument("job_id", type=int)
@click.option("--env", "env_name", default=PRODUCTION, show_default=True, help="Environment.")
@click.pass_context
@_handles_errors
def jobs_show(ctx: click.Context, job_id: int, env_name: str) -> None:
    """Show one job as JSON (including progress and the last error)."""
    found = job_queue.get_job(_workspace(ctx), env_name, job_id)
    click.echo(json.dumps(found, ensure_ascii=False, indent=2))


@jobs.command("retry")
@click.argument("job_id", type=int)
@click.option("--env", "env_name", default=PRODUCTION, show_default=True, help="Environment.")
@click.pass_context
@_handles_errors
def jobs_retry(ctx: click.Context, job_id: int, env_name: str) -> None:
    """Queue failed job JOB_ID again."""
    job_queue.retry_job(_workspace(ctx), env_name, job_id)
    click.echo(f"job {job_id} queued again")


# -- environments --------------------------------------------------------------------------


@main.group()
def env() -> None:
    """List, create and drop environments (production and sandboxes)."""


@env.command("list")
@click.pass_context
@_handles_errors
def env_list(ctx: click.Context) -> None:
    """List environments."""
    for info in environments.list_environments(_workspace(ctx)):
        click.echo(f"{info.name}\t{info.created_at:%Y-%m-%d %H:%M}\t{info.description}")


@env.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the environment is for.")
@click.pass_context
@_handles_errors
def env_create(ctx: click.Context, name: str, description: str) -> None:
    """Create an environment named NAME (a slug such as sandbox_1)."""
    environments.create_environment(_workspace(ctx), name, description=description)
    click.echo(f"created environment {name}")


@env.command("drop")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@_handles_errors
def env_drop(ctx: click.Context, name: str, yes: bool) -> None:
    """Drop environment NAME with all its data (production cannot be dropped)."""
    if not yes:
        click.confirm(f"Drop environment {name} and all its data?", abort=True)
    environments.drop_environment(_workspace(ctx), name)
    click.echo(f"dropped environment {name}")


# -- records: import and export ------------------------------------------------------------


@main.group()
def records() -> None:
    """Import records from CSV/XLSX files and export them."""


@records.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--entity", required=True, help="Entity to import into.")
@click.option("--env", "env_name", default=PRODUCTION, show_default=True, help="Environment.")
@click.option(
    "--mode",
    type=click.Choice(["all_or_nothing", "skip_bad_rows"]),
    default="all_or_nothing",
    show_default=True,
    help="all_or_nothing: any bad cell and nothing is written; skip_bad_rows: write good rows.",
)
@click.option(
    "--upsert-on", default=None, help="Unique field (or id) that finds records to update."
)
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Fill FIELD from COLUMN (repeatable); COLUMN= ignores the column.",
)
@click.option(
    "--lookup-by",
    multiple=True,
    metavar="FIELD=TARGET_FIELD",
    help="Resolve lookup FIELD by TARGET_FIELD of the looked-up entity (default: its title).",
)
@click.option("--timezone", default=DEFAULT_TIMEZONE, show_default=True, help="For local times.")
@click.option("--sheet", default=None, help="XLSX sheet to read (default: the first).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option(
    "--wait-for-worker",
    type=float,
    default=None,
    help="Seconds to wait for a worker to take the job before running it here "
    "(default: 0 on SQLite, 5 on PostgreSQL).",
)
@click.pass_context
@_handles_errors
def records_import(
    ctx: click.Context,
    file: Path,
    entity: str,
    env_name: str,
    mode: str,
    upsert_on: str | None,
    dry_run: bool,
    mappings: tuple[str, ...],
    lookup_by: tuple[str, ...],
    timezone: str,
    sheet: str | None,
    lang: str,
    wait_for_worker: float | None,
) -> None:
    """Import FILE (CSV or XLSX) into ENTITY as a background job, showing its progress.

    Exit code 1 when rows are bad and nothing was written (all_or_nothing, dry runs)
    or the job failed.
    """
    workspace = _workspace(ctx)
    options = {
        "mapping": {k: (v or None) for k, v in _pairs(mappings, "--map").items()},
        "mode": mode,
        "upsert_on": upsert_on,
        "lookup_by": _pairs(lookup_by, "--lookup-by"),
        "dry_run": dry_run,
        "timezone": timezone,
        "sheet": sheet,
    }
    with file.open("rb") as upload:
        started = record_import.submit_import(
            workspace,
            env=env_name,
            entity=entity,
            upload=upload,
            file_name=file.name,
            options=options,
            lang=lang,
            principal=SYSTEM,
        )
    for column in started["columns"]:
        if column["field"] is None and column["matched_by"] != "system":
            hint = f" (did you mean {', '.join(column['suggestions'])}?)"
            click.echo(
                f"column {column['column']!r} is not imported"
                + (hint if column["suggestions"] else ""),
                err=True,
            )
    wait = wait_for_worker if wait_for_worker is not None else (0 if workspace.is_sqlite else 5)
    job_id = started["job"]["id"]
    outcome = _follow_job(workspace, env_name, job_id, wait_seconds=wait)
    finished = record_import.get_import(
        workspace, env=env_name, import_id=started["id"], principal=SYSTEM
    )
    if outcome["status"] == FAILED:
        _fail(f"import job {job_id} failed: {outcome['last_error']}", 1)
    summary = finished["summary"] or {}
    _print_import_summary(summary)
    written = summary.get("written", False)
    if finished["status"] != "done" or (summary.get("error_count") and not written):
        sys.exit(1)


@records.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--entity", required=True, help="Entity to export.")
@click.option("--env", "env_name", default=PRODUCTION, show_default=True, help="Environment.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "xlsx"]),
    default=None,
    help="Default: OUT's extension, else csv.",
)
@click.option(
    "--where",
    default=None,
    help='JSON condition, e.g. {"field": "stage", "op": "eq", "value": "won"}.',
)
@click.option("--q", "search", default=None, help="Search the searchable text fields.")
@click.option("--sort", default=None, help="Comma-separated fields, - for descending.")
@click.option("--fields", default=None, help="Comma-separated fields to export.")
@click.option(
    "--headers",
    type=click.Choice(["labels", "names"]),
    default="labels",
    show_default=True,
    help="Column headers: labels (in --lang) or API names.",
)
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.pass_context
@_handles_errors
def records_export(
    ctx: click.Context,
    out: Path,
    entity: str,
    env_name: str,
    file_format: str | None,
    where: str | None,
    search: str | None,
    sort: str | None,
    fields: str | None,
    headers: str,
    lang: str,
) -> None:
    """Export the records of ENTITY matching the filters to OUT (CSV or XLSX)."""
    chosen = file_format or ("xlsx" if out.suffix.lower() == ".xlsx" else "csv")
    given = {"where": where, "q": search, "sort": sort, "fields": fields}
    asked = request_from_query([(k, v) for k, v in given.items() if v is not None])
    exported = export_records(
        _workspace(ctx),
        env=env_name,
        entity=entity,
        request=asked,
        file_format="xlsx" if chosen == "xlsx" else "csv",
        headers="names" if headers == "names" else "labels",
        lang=lang,
        principal=SYSTEM,
    )
    size = 0
    with out.open("wb") as target:
        for chunk in exported.chunks:
            target.write(chunk)
            size += len(chunk)
    click.echo(f"exported {entity} to {out} ({size:,} bytes)")


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"{option} takes NAME=VALUE, got {item!r}", 2)
        pairs[key] = value
    return pairs


def _follow_job(
    workspace: Workspace, env_name: str, job_id: int, *, wait_seconds: float
) -> dict[str, Any]:
    """Show the job's progress until it ends; run it here if no worker takes it in time."""
    deadline = time.monotonic() + wait_seconds
    stop = threading.Event()
    inline: threading.Thread | None = None
    try:
        with click.progressbar(length=1, label="importing", show_pos=True) as bar:
            while True:
                found = job_queue.get_job(workspace, env_name, job_id)
                progress = found["progress"] or {}
                if progress.get("total"):
                    bar.length = progress["total"]
                    bar.update(max(progress["done"] - bar.pos, 0))
                if found["status"] in (DONE, FAILED):
                    return found
                if inline is None and found["status"] == QUEUED and time.monotonic() >= deadline:
                    inline = threading.Thread(
                        target=_run_jobs_until, args=(workspace, stop), daemon=True
                    )
                    inline.start()
                time.sleep(0.1)
    finally:
        stop.set()
        if inline is not None:
            inline.join()


def _run_jobs_until(workspace: Workspace, stop: threading.Event) -> None:
    """An in-process worker for commands that wait for their job (no worker may be running)."""
    job_worker = Worker(workspace, poll_interval=0.2)
    while not stop.is_set():
        if job_worker.run_once() == 0:
            stop.wait(0.2)


def _print_import_summary(summary: dict[str, Any]) -> None:
    for error in summary.get("errors", []):
        place = []
        if error["row"] is not None:
            place.append(f"row {error['row']}")
        if error["column"] is not None:
            place.append(f"column {error['column']}")
        prefix = ", ".join(place)
        click.echo(f"{prefix}: {error['message']}" if prefix else error["message"], err=True)
    if summary.get("errors_truncated"):
        more = summary["error_count"] - len(summary["errors"])
        click.echo(f"... and {more} more problem(s)", err=True)
    verb = "would be " if summary.get("dry_run") else ""
    click.echo(
        f"{summary.get('rows', 0)} row(s): {summary.get('created', 0)} {verb}created, "
        f"{summary.get('updated', 0)} {verb}updated, {summary.get('unchanged', 0)} unchanged, "
        f"{summary.get('skipped', 0)} skipped, {summary.get('error_count', 0)} problem(s)"
        + ("" if summary.get("written") or summary.get("dry_run") else "; nothing was written")
    )


# -- metadata ------------------------------------------------------------------------------


@main.group()
def meta() -> None:
    """Validate, apply, export and inspect metadata documents."""


@meta.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--env", "env_name", default=None, help="Also check references against ENV.")
@click.pass_context
@_handles_errors
def meta_validate(ctx: click.Context, paths: tuple[Path, ...], env_name: str | None) -> None:
    """Validate metadata files (or folders of them) without publishing anything."""
    documents = list(_read_documents(paths))
    published: dict[str, Any] = {}
    if env_name:
        published = MetaStore(_workspace(ctx)).published(env_name)
    pending: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if isinstance(doc.body, dict) and isinstance(doc.body.get("name"), str):
            pending.setdefault(doc.kind, {})[doc.body["name"]] = doc.body
    context = CheckContext(published=published, pending=pending)
    failures: dict[str, list[Issue]] = {}
    for doc in documents:
        try:
            document_kinds.get(doc.kind).validate(doc.body, context)
        except DocumentInvalid as exc:
            failures[doc.source] = exc.issues
    if failures:
        raise BatchInvalid(failures)
    click.echo(f"{len(documents)} document(s) valid")


@meta.command("apply")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--env", "env_name", required=True, help="Environment to publish into.")
@click.option("--force", is_flag=True, help="Accept type changes that lose data.")
@click.option("--purge", is_flag=True, help="Drop removed fields' columns for good.")
@click.option("--comment", default="", help="A note stored with the new versions.")
@click.pass_context
@_handles_errors
def meta_apply(
    ctx: click.Context,
    paths: tuple[Path, ...],
    env_name: str,
    force: bool,
    purge: bool,
    comment: str,
) -> None:
    """Validate and publish metadata files or folders into ENV, all or nothing."""
    documents = list(_read_documents(paths))
    store = MetaStore(_workspace(ctx))
    options = PublishOptions(force=force, purge=purge, comment=comment, actor="cli")
    for result in store.apply(env_name, documents, options):
        state = f"version {result.version}" if result.changed else "unchanged"
        click.echo(f"{result.kind} {result.name}: {state}")


@meta.command("export")
@click.option("--env", "env_name", required=True, help="Environment to export.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@_handles_errors
def meta_export(ctx: click.Context, env_name: str, directory: Path) -> None:
    """Write every published document of ENV to DIRECTORY/<kind>/<name>.json."""
    store = MetaStore(_workspace(ctx))
    count = 0
    for kind, documents in store.published(env_name).items():
        folder = directory / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in sorted(documents.items()):
            text = json.dumps({"kind": kind, **body}, ensure_ascii=False, indent=2)
            (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")
            count += 1
    click.echo(f"exported {count} document(s) to {directory}")


@meta.command("history")
@click.argument("kind")
@click.argument("name")
@click.option("--env", "env_name", required=True, help="Environment to read.")
@click.pass_context
@_handles_errors
def meta_history(ctx: click.Context, kind: str, name: str, env_name: str) -> None:
    """List the published versions of document KIND NAME."""
    for v in MetaStore(_workspace(ctx)).versions(env_name, kind, name):
        who = v["published_by"] or "-"
        click.echo(f"{v['version']}\t{v['action']}\t{v['published_at']}\t{who}\t{v['comment']}")


@meta.command("schemas")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def meta_schemas(directory: Path) -> None:
    """Write the meta-schema of every document kind to DIRECTORY/<kind>.schema.json."""
    for kind, text in render_schemas().items():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{kind}.schema.json").write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(document_kinds.names())} schema(s) to {directory}")


def render_schemas() -> dict[str, str]:
    """The meta-schemas as they are written to ``docs/schemas``."""
    return {
        kind.name: json.dumps(kind.json_schema(), ensure_ascii=False, indent=2) + "\n"
        for kind in document_kinds
    }


def _read_documents(paths: tuple[Path, ...]) -> Iterator[SourceDocument]:
    """Documents from files and folders (``*.json``, recursively, in name order)."""
    for path in paths:
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for file in files:
            yield _read_document(file)


def _read_document(file: Path) -> SourceDocument:
    """A document's kind is its ``kind`` property, else the name of its folder."""
    source = str(file)
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchInvalid({source: [Issue("", "json", f"not valid JSON: {exc}")]}) from None
    kind = body.pop("kind", None) if isinstance(body, dict) else None
    if kind is None and file.parent.name in document_kinds:
        kind = file.parent.name
    if not isinstance(kind, str) or kind not in document_kinds:
        message = (
            f'cannot tell the document kind: add "kind": one of {document_kinds.names()}, '
            "or put the file in a folder named after its kind"
        )
        raise BatchInvalid({source: [Issue("/kind", "unknown_kind", message)]})
    return SourceDocument(kind=kind, body=body, source=source)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
