"""The list page of an entity: columns, sort, search, paging, filters, saved views, bulk, export.

Everything a viewer sees or changes goes through the platform's services with their
principal: the list through :func:`~formloom.platform.record_query.list_in_environment`
(read scopes and hidden fields apply as in the API), saved views through
:mod:`formloom.platform.saved_views`, bulk changes through the records service's bulk
write and owner transfer (one transaction each, all or nothing), exports through
:func:`~formloom.platform.record_export.export_records`.

The list's state lives in the address, so paging, sorting, the back button and a
bookmark keep it: ``filter`` (the structured filter JSON of ``docs/record-lists.md``),
``q``, ``sort``, ``columns`` and ``after``. The filter builder is a plain GET form of
rows ``f_field``/``f_op``/``f_value`` (and ``f_join``: and/or) that works without
JavaScript; :mod:`~formloom.platform.web.list_filters` turns the rows into the filter
JSON and the filter back into rows. The list's own planner checks the filter, so a bad
one is shown on the page with its problems, never run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from formloom.engine.conditions import condition_fields, storage_kind, value_shape
from formloom.engine.errors import Issue
from formloom.engine.forms.widgets import form_widgets
from formloom.engine.records.compiled import CompiledField
from formloom.platform import record_export, records, saved_views
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.list_request import ListRequest
from formloom.platform.record_query import ListPage, list_in_environment
from formloom.platform.users import user_id_for_login
from formloom.platform.web import pages, views
from formloom.platform.web.list_filters import (
    BUILDER_OPERATORS,
    TRUE_WORDS,
    choice_lists,
    condition_problems,
    filter_fields,
    filter_from_rows,
    rows_of,
    split_commas,
)
from formloom.platform.web.session import CSRF_FIELD, WebSession, web_session
from formloom.platform.web.texts import request_language, texts_for

PAGE_SIZE = 25
BULK_ACTIONS = ("edit", "delete", "transfer")
_ROW_PATH = re.compile(r"^/(?:update|delete|ids)/(\d+)")

router = APIRouter(prefix="/app", include_in_schema=False)


# -- the list's state in the address ------------------------------------------------------------


@dataclass
class ListState:
    """What the address asks the list to show (before the planner checks it)."""

    filter: Any = None
    sort: list[str] = field(default_factory=list)
    search: str = ""
    columns: list[str] | None = None
    after: str | None = None
    view_id: int | None = None
    #: The filter JSON could not be read: why (shown instead of the list).
    filter_problem: str | None = None

    @property
    def filter_text(self) -> str:
        """The filter as compact JSON, for links and hidden inputs ('' without one)."""
        if self.filter is None:
            return ""
        return json.dumps(self.filter, ensure_ascii=False, separators=(",", ":"))

    def link(self, base: str, **changes: Any) -> str:
        """The address of this list with ``changes`` (``after``, ``sort``, ``view``…)."""
        params = {
            "filter": self.filter_text,
            "q": self.search,
            "sort": ",".join(self.sort),
            "columns": ",".join(self.columns) if self.columns is not None else "",
        }
        params.update({key: "" if value is None else str(value) for key, value in changes.items()})
        shown = pages.query(**params)
        return f"{base}?{shown}" if shown else base

    def request(self, columns: Sequence[str], *, limit: int = PAGE_SIZE) -> ListRequest:
        return ListRequest(
            where=self.filter,
            sort=list(self.sort),
            after=self.after,
            limit=limit,
            fields=list(columns),
            search=self.search or None,
        )


def state_of(
    items: Sequence[tuple[str, str]], compiled_fields: Mapping[str, CompiledField]
) -> ListState:
    """The list state from query parameters; builder rows (``f_field``…) replace ``filter``."""
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)

    def one(name: str) -> str:
        return (values.get(name) or [""])[-1].strip()

    state = ListState(
        sort=split_commas(one("sort")),
        search=one("q"),
        columns=list(dict.fromkeys(c for v in values.get("columns", []) for c in split_commas(v)))
        or None,
        after=one("after") or None,
        view_id=int(one("view")) if one("view").isdigit() else None,
    )
    if "f_field" in values:
        state.filter = filter_from_rows(
            values.get("f_field", []),
            values.get("f_op", []),
            values.get("f_value", []),
            join=one("f_join"),
            fields=compiled_fields,
        )
    elif one("filter"):
        try:
            state.filter = json.loads(one("filter"))
        except ValueError as exc:
            state.filter_problem = str(exc)
    return state


# -- the list page -------------------------------------------------------------------------------


@router.get("/{env}/{entity}")
def record_list(request: Request, env: str, entity: str) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        items = list(request.query_params.multi_items())
        return list_page(request, session, env, entity, items)

    return pages.guarded(request, lang, work)


@dataclass
class BulkOutcome:
    """What a bulk post left to show: problems by record id, general ones, the ids chosen."""

    by_record: dict[int, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    selected: frozenset[int] = frozenset()
    status: int = 422


def list_page(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    items: Sequence[tuple[str, str]],
    *,
    bulk: BulkOutcome | None = None,
) -> Response:
    """The list page for the state in ``items`` (the query string)."""
    lang = session.lang
    t = texts_for(lang)
    view = pages.entity_view(request, session, env, entity, "view", "read")
    state = state_of(items, condition_fields(view.compiled))
    columns = _columns(view, state)
    if state.columns is not None:
        state.columns = columns  # links and saved views keep what is shown
    base = f"/app/{env}/{entity}"
    page, problems = _read(request, session, env, view, state, columns)
    rows = _rows(view, page, columns, bulk, lang)
    if bulk is not None:
        _unlisted_errors(bulk, {int(row["id"]) for row in rows}, lang)
    shown = rows_of(state.filter)
    offered = filter_fields(view, lang)
    saved = saved_views.list_views(
        pages.workspace(request), env=env, entity=entity, principal=session.principal, lang=lang
    )
    current = next((v for v in saved if v.id == state.view_id), None)
    status = (
        422 if problems else (bulk.status if bulk and (bulk.general or bulk.by_record) else 200)
    )
    return pages.page(
        request,
        "list.html",
        lang=lang,
        status=status,
        session=session,
        env=env,
        current_entity=entity,
        entity=entity,
        entity_label=view.label(lang),
        base=base,
        columns=[_column(view, name, lang, base, state) for name in columns],
        rows=rows,
        state=state,
        total=page.total if page else None,
        may_create=view.access.may(entity, "create"),
        next_url=state.link(base, after=page.next, view=state.view_id)
        if page and page.next
        else None,
        first_url=state.link(base, view=state.view_id) if state.after else None,
        column_choices=_column_choices(view, columns, lang),
        choice_lists=choice_lists(view, lang),
        filter_fields=offered,
        field_ops={f.name: f.ops for f in offered},
        all_ops=BUILDER_OPERATORS,
        clear_url=ListState(sort=state.sort, search=state.search, columns=state.columns).link(base),
        builder=shown,
        filter_problems=problems,
        views=saved,
        current_view=current,
        board_url=f"{base}/board" if _has_board(view) else None,
        export_urls=_export_urls(view, state, base),
        bulk_actions=_bulk_actions(view),
        bulk_fields=_bulk_fields(view, lang),
        bulk=bulk or BulkOutcome(),
        here_url=state.link(base, view=state.view_id),
        done=_done_message(items, t),
    )


def _read(
    request: Request,
    session: WebSession,
    env: str,
    view: views.EntityView,
    state: ListState,
    columns: list[str],
) -> tuple[ListPage | None, list[str]]:
    """A page of the list, or no page and why the list's state could not be read."""
    lang = session.lang
    if state.filter_problem is not None:
        return None, [texts_for(lang)["filter_error_json"].format(detail=state.filter_problem)]
    try:
        page = list_in_environment(
            pages.workspace(request),
            env,
            view.compiled.name,
            state.request(columns),
            principal=session.principal,
            lang=lang,
        )
    except Invalid as exc:
        issues = exc.issues or [Issue("", exc.code, exc.message)]
        return None, condition_problems(issues, state.filter, view, lang)
    return page, []


def _rows(
    view: views.EntityView,
    page: ListPage | None,
    columns: list[str],
    bulk: BulkOutcome | None,
    lang: str,
) -> list[dict[str, Any]]:
    """The table's rows: id, version (for bulk edits), cells as text, a bulk change's problems."""
    return [
        {
            "id": item["id"],
            "version": item["version"],
            "cells": [views.display_value(view.compiled, c, item, lang) for c in columns],
            "errors": bulk.by_record.get(int(item["id"]), []) if bulk else [],
        }
        for item in (page.items if page else [])
    ]


def _unlisted_errors(bulk: BulkOutcome, listed: set[int], lang: str) -> None:
    """Problems of records the page does not list (out of the viewer's scope, or on another
    page) join the general ones, so that none goes unseen."""
    t = texts_for(lang)
    for record_id in sorted(set(bulk.by_record) - listed):
        for message in bulk.by_record.pop(record_id):
            bulk.general.append(f"{t['bulk_record'].format(id=record_id)}: {message}")


def _columns(view: views.EntityView, state: ListState) -> list[str]:
    """The asked columns the viewer may see (in their order), else the default ones."""
    if state.columns is None:
        return views.list_columns(view)
    hidden = view.access.hidden(view.compiled.name)
    fields = view.compiled.fields
    chosen = [
        name
        for name in dict.fromkeys(state.columns)
        if name in fields
        and name not in hidden
        and fields[name].field_type.name not in views.UNLISTED_TYPES
        and not fields[name].field_type.virtual
    ]
    return chosen or views.list_columns(view)


def _column_choices(
    view: views.EntityView, shown: list[str], lang: str
) -> list[tuple[str, str, bool]]:
    """Every field the list could show as a column: name, label, whether it is shown."""
    hidden = view.access.hidden(view.compiled.name)
    return [
        (name, compiled.label(lang), name in shown)
        for name, compiled in view.compiled.fields.items()
        if name not in hidden
        and compiled.field_type.name not in views.UNLISTED_TYPES
        and not compiled.field_type.virtual
    ]


def _column(
    view: views.EntityView, name: str, lang: str, base: str, state: ListState
) -> dict[str, Any]:
    field_ = view.compiled.fields[name]
    sortable = field_.field_type.name in views.SORTABLE_TYPES
    sort = state.sort[0] if len(state.sort) == 1 else None
    wanted = f"-{name}" if sort == name else name
    return {
        "name": name,
        "label": field_.label(lang),
        "sort_url": state.link(base, sort=wanted) if sortable else None,
        "sorted": "asc" if sort == name else "desc" if sort == f"-{name}" else None,
    }


def _has_board(view: views.EntityView) -> bool:
    """A board groups cards by a single-choice field the viewer may read."""
    hidden = view.access.hidden(view.compiled.name)
    return any(
        f.field_type.name == "single_select" and name not in hidden
        for name, f in view.compiled.fields.items()
    )


def _export_urls(view: views.EntityView, state: ListState, base: str) -> dict[str, str]:
    if not view.access.may(view.compiled.name, "export"):
        return {}
    return {fmt: state.link(f"{base}/export", format=fmt) for fmt in record_export.EXPORT_FORMATS}


def _done_message(items: Sequence[tuple[str, str]], t: Mapping[str, str]) -> str | None:
    """The notice after a bulk change (``done=edit&n=3`` in the address)."""
    given = dict(items)
    action, count = given.get("done", ""), given.get("n", "")
    if action not in BULK_ACTIONS or not count.isdigit():
        return None
    return t[f"bulk_done_{action}"].format(n=int(count))


# -- saved views ---------------------------------------------------------------------------------


@router.post("/{env}/{entity}/views")
async def save_view(request: Request, env: str, entity: str) -> Response:
    """Save the list's current state as a view of the signed-in user (replacing one of the
    same name), then show it."""
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        view = pages.entity_view(request, session, env, entity, "view", "read")
        state = state_of(items, condition_fields(view.compiled))
        if state.filter_problem is not None:
            raise Invalid(texts_for(lang)["filter_error_json"].format(detail=state.filter_problem))
        saved = saved_views.save_view(
            pages.workspace(request),
            env=env,
            entity=entity,
            name=pages.field(items, "name") or "",
            definition=saved_views.ViewDefinition(
                filter=state.filter,
                sort=state.sort,
                columns=state.columns,
                search=state.search or None,
            ),
            shared=pages.field(items, "shared") == "true",
            principal=session.principal,
            lang=lang,
        )
        return RedirectResponse(f"/app/{env}/{entity}/views/{saved.id}", status_code=303)

    return await run_in_threadpool(pages.guarded, request, lang, work)


@router.get("/{env}/{entity}/views/{view_id:int}")
def open_view(request: Request, env: str, entity: str, view_id: int) -> Response:
    """A saved view: the list with its filter, sort, columns and search in the address."""
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        found = saved_views.get_view(
            pages.workspace(request),
            env=env,
            entity=entity,
            view_id=view_id,
            principal=session.principal,
            lang=lang,
        )
        definition = found.definition
        state = ListState(
            filter=definition.filter,
            sort=definition.sort,
            search=definition.search or "",
            columns=definition.columns,
        )
        return RedirectResponse(state.link(f"/app/{env}/{entity}", view=found.id), status_code=303)

    return pages.guarded(request, lang, work)


@router.post("/{env}/{entity}/views/{view_id:int}/delete")
async def delete_view(request: Request, env: str, entity: str, view_id: int) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        saved_views.delete_view(
            pages.workspace(request),
            env=env,
            entity=entity,
            view_id=view_id,
            principal=session.principal,
            lang=lang,
        )
        return RedirectResponse(f"/app/{env}/{entity}", status_code=303)

    return await run_in_threadpool(pages.guarded, request, lang, work)


# -- bulk changes --------------------------------------------------------------------------------


def _bulk_actions(view: views.EntityView) -> list[str]:
    """The bulk actions the viewer's roles allow at all (rows are checked by the services)."""
    name = view.compiled.name
    allowed = []
    if view.access.may(name, "update"):
        allowed += ["edit", "transfer"]
    if view.access.may(name, "delete"):
        allowed.append("delete")
    return [action for action in BULK_ACTIONS if action in allowed]


def _bulk_fields(view: views.EntityView, lang: str) -> list[tuple[str, str]]:
    """Fields a bulk edit may set: stored, neither hidden nor read-only, edited by a text box."""
    return [
        (name, compiled.label(lang))
        for name, compiled in view.compiled.fields.items()
        if view.field_modes.get(name) is None
        and not compiled.field_type.virtual
        and compiled.field_type.name not in views.UNLISTED_TYPES
        and compiled.field_type.name not in ("formula", "rollup", "auto_number")
    ]


@router.post("/{env}/{entity}/bulk")
async def bulk_change(request: Request, env: str, entity: str) -> Response:
    """Change the selected records (one transaction: all or nothing), then the list again;
    problems are shown on the list next to their records."""
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        back = _back(pages.field(items, "back"), env, entity)
        list_items = parse_qsl(urlsplit(back).query, keep_blank_values=True)
        ids = [int(v) for k, v in items if k == "id" and v.isdigit()]
        action = pages.field(items, "action") or ""
        try:
            count = _run_bulk(request, session, env, entity, action, ids, items)
        except PlatformError as exc:
            outcome = _outcome(exc, ids, lang)
            return list_page(request, session, env, entity, list_items, bulk=outcome)
        separator = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{separator}done={action}&n={count}", status_code=303)

    return await run_in_threadpool(pages.guarded, request, lang, work)


def _back(target: str | None, env: str, entity: str) -> str:
    """The list address to return to: only this entity's list."""
    base = f"/app/{env}/{entity}"
    parts = urlsplit(target or "")
    if not parts.scheme and not parts.netloc and parts.path == base:
        return f"{base}?{parts.query}" if parts.query else base
    return base


def _run_bulk(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    action: str,
    ids: list[int],
    items: list[tuple[str, str]],
) -> int:
    """Run one bulk action through the records service; how many records it changed."""
    t = texts_for(session.lang)
    if action not in BULK_ACTIONS:
        raise Invalid(t["bulk_unknown_action"])
    if not ids:
        raise Invalid(t["bulk_none_selected"])
    workspace, principal, lang = pages.workspace(request), session.principal, session.lang
    if action == "delete":
        done = records.bulk_write(
            workspace,
            env=env,
            entity=entity,
            delete=[{"id": i} for i in ids],
            principal=principal,
            lang=lang,
        )
        return len(done["deleted"])
    if action == "transfer":
        owner = _owner_id(request, pages.field(items, "owner") or "", lang)
        moved = records.transfer_owner(
            workspace,
            env=env,
            entity=entity,
            record_ids=ids,
            owner_id=owner,
            principal=principal,
            lang=lang,
        )
        return len(moved)
    view = pages.entity_view(request, session, env, entity, "edit", "update")
    name = pages.field(items, "field") or ""
    if name not in dict(_bulk_fields(view, lang)):
        raise Invalid(t["bulk_unknown_field"])
    value = _posted_value(view.compiled.fields[name], pages.field(items, "value") or "")
    changed = records.bulk_write(
        workspace,
        env=env,
        entity=entity,
        update=[{"id": i, "version": _version(items, i), name: value} for i in ids],
        principal=principal,
        lang=lang,
    )
    return len(changed["updated"])


def _version(items: list[tuple[str, str]], record_id: int) -> int | None:
    """The version of a record as the list showed it (``v<id>``): an edit of a record someone
    changed since is refused as stale, not applied over their change."""
    text = pages.field(items, f"v{record_id}") or ""
    return int(text) if text.isdigit() else None


def _posted_value(compiled: CompiledField, text: str) -> Any:
    """The value a bulk edit's text box stands for, read as the record form reads a post
    (several choices separated by commas; an empty box clears the field)."""
    if not text.strip():
        return None
    posted: dict[str, list[str]] = {compiled.name: [text]}
    if value_shape(compiled) == "list":
        posted[compiled.name] = split_commas(text)
    if storage_kind(compiled) == "boolean":
        posted[compiled.name] = ["true"] if text.strip().lower() in TRUE_WORDS else ["false"]
    widget = form_widgets.get(compiled.field_type.name)
    return widget.from_post(compiled.name, posted, compiled, views.business_now().tzinfo or UTC)


def _owner_id(request: Request, given: str, lang: str) -> int:
    """A user id from a login or an id typed in the form."""
    given = given.strip()
    if not given:
        raise Invalid(texts_for(lang)["bulk_owner_required"])
    if given.isdigit():
        return int(given)
    with pages.workspace(request).begin(readonly=True) as conn:
        return user_id_for_login(conn, given, lang=lang)


def _outcome(exc: PlatformError, ids: list[int], lang: str) -> BulkOutcome:
    """A bulk error's problems by record (paths ``/update/3…``, ``/delete/3``, ``/ids/3``)."""
    t = texts_for(lang)
    outcome = BulkOutcome(selected=frozenset(ids), status=exc.status)
    issues = exc.issues or [Issue("", exc.code, exc.message)]
    for issue in issues:
        found = _ROW_PATH.match(issue.path)
        index = int(found.group(1)) if found else -1
        if 0 <= index < len(ids):
            outcome.by_record.setdefault(ids[index], []).append(issue.message)
        else:
            outcome.general.append(issue.message)
    if outcome.by_record:
        outcome.general.insert(0, t["bulk_failed"].format(n=len(issues)))
    return outcome


# -- export --------------------------------------------------------------------------------------


@router.get("/{env}/{entity}/export")
def export_list(request: Request, env: str, entity: str) -> Response:
    """The filtered list as a CSV or XLSX file (the export service checks the permission)."""
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        view = pages.entity_view(request, session, env, entity, "view", "read")
        items = list(request.query_params.multi_items())
        state = state_of(items, condition_fields(view.compiled))
        if state.filter_problem is not None:
            raise Invalid(texts_for(lang)["filter_error_json"].format(detail=state.filter_problem))
        file_format = dict(items).get("format", "csv")
        exported = record_export.export_records(
            pages.workspace(request),
            env=env,
            entity=entity,
            request=ListRequest(
                where=state.filter,
                sort=state.sort,
                fields=_columns(view, state) if state.columns else None,
                search=state.search or None,
            ),
            principal=session.principal,
            file_format="xlsx" if file_format == "xlsx" else "csv",
            lang=lang,
        )
        disposition = f"attachment; filename*=UTF-8''{quote(exported.file_name)}"
        return StreamingResponse(
            exported.chunks,
            media_type=exported.media_type,
            headers={"Content-Disposition": disposition},
        )

    return pages.guarded(request, lang, work)
