"""Kanban boards of the staff web app: records as cards in columns of a single-choice field.

``GET /app/{env}/{entity}/board`` shows one column per option of the field (``?field=``,
else the first single-choice field the viewer may see) and one for records without a
value; ``POST …/board/move`` moves a card by saving the record with the new value.

Everything goes through the platform's services with the viewer's principal: the
cards of a column are a list request (:func:`~formloom.platform.record_query.list_in_environment`),
the counts and totals one grouped query (:func:`~formloom.platform.record_totals.totals_by_group`,
exact even when a column shows only its first cards), and a move is
:func:`~formloom.platform.records.update_record` at the version the card was shown
with, so validation rules, required fields, permissions and approval locks refuse
a move exactly as they refuse an edit, and the refusal's reason is shown. A drag,
the card's "move to" list and a browser without JavaScript all post the same form;
with htmx the answer is the board again, re-read, so counts and totals follow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from formloom.engine.forms.widgets import choice_list
from formloom.engine.records.compiled import CompiledField
from formloom.platform import records
from formloom.platform.auth import Unauthenticated
from formloom.platform.errors import Invalid, NotFound, PlatformError
from formloom.platform.list_request import ListRequest
from formloom.platform.record_errors import StaleVersion
from formloom.platform.record_query import list_in_environment
from formloom.platform.record_totals import GroupTotals, Number, totals_by_group
from formloom.platform.web import pages, views
from formloom.platform.web.session import CSRF_FIELD, WebSession, web_session
from formloom.platform.web.texts import request_language, texts_for

#: Cards shown per column; a longer column links to the list filtered by its value.
COLUMN_LIMIT = 50
#: Fields shown on a card under its title.
CARD_FIELDS = 3
#: Field types whose total a column shows, the first kind found winning.
AMOUNT_TYPES = ("currency", "decimal", "integer")
#: Statuses of a refused move that the board explains (anything else is an error page).
REFUSALS = frozenset({403, 409, 422, 423, 428})

router = APIRouter(prefix="/app", include_in_schema=False)


class BoardFieldMissing(NotFound):
    """The entity has no single-choice field the viewer may see, or ``?field=`` names none."""

    code = "board_field_not_found"


@dataclass(frozen=True)
class BoardSpec:
    """What one viewer's board of an entity is made of."""

    view: views.EntityView
    group: CompiledField
    amount: CompiledField | None
    card_fields: tuple[str, ...]
    options: tuple[Mapping[str, str], ...]
    lang: str

    @property
    def values(self) -> list[str]:
        return [option["value"] for option in self.options]


@dataclass(frozen=True)
class Notice:
    """The outcome of a move shown above the board: ``ok`` or ``error``."""

    kind: str
    text: str


@dataclass(frozen=True)
class Move:
    """A posted move: the record at the version its card showed, and the target value."""

    record_id: int
    version: int
    to: str | None


# -- routes ------------------------------------------------------------------------------------


@router.get("/{env}/{entity}/board")
def board_page(request: Request, env: str, entity: str, field: str | None = None) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        spec = _spec(request, session, env, entity, field)
        return _render(request, session, env, spec, notice=None, status=200, partial=False)

    return pages.guarded(request, lang, work)


@router.post("/{env}/{entity}/board/move")
async def move_card(request: Request, env: str, entity: str) -> Response:
    """Move a card; htmx gets the board again (with the outcome), a plain form a redirect."""
    lang = request_language(request)
    items = await pages.posted(request)
    htmx = request.headers.get("hx-request") == "true"

    def work() -> Response:
        try:
            session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        except Unauthenticated:
            if not htmx:
                raise
            target = urlencode({"next": _board_url(env, entity, None)})
            return Response(headers={"HX-Redirect": f"/app/login?{target}"})
        spec = _spec(request, session, env, entity, pages.field(items, "field"))
        notice, status = _move(request, session, env, spec, _posted_move(items, lang))
        if status == 200 and not htmx:
            return RedirectResponse(_board_url(env, entity, spec.group.name), status_code=303)
        return _render(request, session, env, spec, notice=notice, status=status, partial=htmx)

    return await run_in_threadpool(pages.guarded, request, lang, work)


# -- what the board is made of -----------------------------------------------------------------


def _spec(
    request: Request, session: WebSession, env: str, entity: str, wanted: str | None
) -> BoardSpec:
    """The viewer's board: its field (checked), the amount field and the fields of a card."""
    lang = session.lang
    view = pages.entity_view(request, session, env, entity, "view", "read")
    group = _group_field(view, wanted, lang)
    amount = _amount_field(view)
    return BoardSpec(
        view=view,
        group=group,
        amount=amount,
        card_fields=_card_fields(view, group.name, amount),
        options=tuple(choice_list(group, lang)),
        lang=lang,
    )


def choice_fields(view: views.EntityView) -> dict[str, CompiledField]:
    """The single-choice fields the viewer may see: what a board can make columns of."""
    return {
        name: field
        for name, field in view.compiled.fields.items()
        if field.field_type.name == "single_select" and view.field_modes.get(name) != "hidden"
    }


def _group_field(view: views.EntityView, wanted: str | None, lang: str) -> CompiledField:
    candidates = choice_fields(view)
    t = texts_for(lang)
    entity_label = view.label(lang)
    if not candidates:
        raise BoardFieldMissing(t["board_no_field"].format(entity=entity_label))
    if not wanted:
        return next(iter(candidates.values()))
    if wanted not in candidates:
        raise BoardFieldMissing(
            t["board_bad_field"].format(
                field=wanted, entity=entity_label, choices=", ".join(f"`{n}`" for n in candidates)
            )
        )
    return candidates[wanted]


def _amount_field(view: views.EntityView) -> CompiledField | None:
    """The first visible currency field, else decimal, else integer: the column total."""
    visible = [
        field
        for name, field in view.compiled.fields.items()
        if view.field_modes.get(name) != "hidden"
    ]
    for type_name in AMOUNT_TYPES:
        for field in visible:
            if field.field_type.name == type_name:
                return field
    return None


def _card_fields(
    view: views.EntityView, group: str, amount: CompiledField | None
) -> tuple[str, ...]:
    """The title, the amount, then the list's next columns (the column says the group)."""
    title = view.compiled.title_field
    listed = [name for name in views.list_columns(view) if name not in (title, group)]
    extra = [amount.name] if amount is not None else []
    extra += [name for name in listed if name not in extra]
    shown = [title] if title and view.field_modes.get(title) != "hidden" else []
    return tuple(shown + extra[:CARD_FIELDS])


# -- reading the board -------------------------------------------------------------------------


def _columns(
    request: Request, session: WebSession, env: str, spec: BoardSpec
) -> list[dict[str, Any]]:
    """Every column with its cards, count and total; the "no value" column last."""
    entity = spec.view.compiled.name
    name = spec.group.name
    totals = totals_by_group(
        pages.workspace(request),
        env,
        entity,
        group_by=name,
        sum_fields=[spec.amount.name] if spec.amount is not None else [],
        principal=session.principal,
        lang=spec.lang,
    )
    values = spec.values
    columns = [
        _column(
            request,
            session,
            env,
            spec,
            value=option["value"],
            label=option["label"],
            where={"field": name, "op": "eq", "value": option["value"]},
            totals=[totals[option["value"]]] if option["value"] in totals else [],
        )
        for option in spec.options
    ]
    rest = (
        {"field": name, "op": "not_in", "value": values}
        if values
        else {"field": name, "op": "is_empty", "value": True}
    )
    columns.append(
        _column(
            request,
            session,
            env,
            spec,
            value="",
            label=texts_for(spec.lang)["board_no_value"].format(field=spec.group.label(spec.lang)),
            where=rest,
            totals=[group for key, group in totals.items() if key not in values],
        )
    )
    return columns


def _column(
    request: Request,
    session: WebSession,
    env: str,
    spec: BoardSpec,
    *,
    value: str,
    label: str,
    where: Mapping[str, Any],
    totals: Sequence[GroupTotals],
) -> dict[str, Any]:
    """One column: its first cards, and its count and total over all its records."""
    entity = spec.view.compiled.name
    listing = ListRequest(
        where=dict(where),
        sort=["-updated_at"],
        limit=COLUMN_LIMIT,
        fields=[*spec.card_fields, spec.group.name],
        with_total=False,
    )
    page = list_in_environment(
        pages.workspace(request), env, entity, listing, principal=session.principal, lang=spec.lang
    )
    count = sum(group.count for group in totals)
    total = None
    if spec.amount is not None:
        amount = spec.amount.name
        total = _shown_number(spec.amount, sum((g.sums[amount] for g in totals), start=0))
    more = page.next is not None or count > len(page.items)
    return {
        "value": value,
        "label": label,
        "count": count,
        "total": total,
        "cards": [_card(spec, item) for item in page.items],
        "more_url": _list_url(env, entity, where) if more else None,
    }


def _list_url(env: str, entity: str, where: Mapping[str, Any]) -> str:
    """The list page filtered to the column's records (its ``filter`` is the same condition)."""
    condition = json.dumps(where, ensure_ascii=False, separators=(",", ":"))
    return f"/app/{env}/{entity}?{urlencode({'filter': condition})}"


def _card(spec: BoardSpec, item: Mapping[str, Any]) -> dict[str, Any]:
    view, lang = spec.view, spec.lang
    compiled = view.compiled
    title_field = compiled.title_field
    title = views.display_value(compiled, title_field, item, lang) if title_field else "—"
    shown = [
        (compiled.fields[name].label(lang), views.display_value(compiled, name, item, lang))
        for name in spec.card_fields
        if name != title_field
    ]
    return {
        "id": item["id"],
        "version": item["version"],
        "title": f"#{item['id']}" if title == "—" else title,
        "fields": [(label, value) for label, value in shown if value != "—"],
        "movable": _may_move(spec, item),
    }


def _may_move(spec: BoardSpec, item: Mapping[str, Any]) -> bool:
    """Offer the move where the service would allow it (the service still decides)."""
    view = spec.view
    entity = view.compiled.name
    return (
        spec.group.name not in view.field_modes
        and view.access.may(entity, "update")
        and view.access.may_own(entity, item.get("owner_id"), "update")
    )


def _shown_number(field: CompiledField, total: Number) -> str:
    """A total with thousands separators, a currency field's total with its currency."""
    text = f"{total:,}" if isinstance(total, int | Decimal) else str(total)
    currency = getattr(field.options, "currency", None)
    return f"{currency} {text}" if field.field_type.name == "currency" and currency else text


# -- moving a card -----------------------------------------------------------------------------


def _posted_move(items: list[tuple[str, str]], lang: str) -> Move:
    record_id = (pages.field(items, "record_id") or "").strip()
    version = (pages.field(items, "version") or "").strip()
    if not record_id.isdigit() or not version.isdigit():
        raise Invalid(texts_for(lang)["board_bad_move"])
    to = pages.field(items, "to") or ""
    return Move(record_id=int(record_id), version=int(version), to=to or None)


def _move(
    request: Request, session: WebSession, env: str, spec: BoardSpec, move: Move
) -> tuple[Notice, int]:
    """Save the record with the card's new value; the notice and status of the outcome."""
    t = texts_for(spec.lang)
    workspace, principal, lang = pages.workspace(request), session.principal, spec.lang
    entity = spec.view.compiled.name
    try:
        record = records.get_record(
            workspace,
            env=env,
            entity=entity,
            record_id=move.record_id,
            principal=principal,
            lang=lang,
        )
    except NotFound:
        return Notice("error", t["board_gone"]), 404
    title = _title(spec, record)
    try:
        records.update_record(
            workspace,
            env=env,
            entity=entity,
            record_id=move.record_id,
            payload={spec.group.name: move.to},
            version=move.version,
            principal=principal,
            lang=lang,
        )
    except StaleVersion:
        return Notice("error", t["board_stale"].format(title=title)), 409
    except PlatformError as exc:
        if exc.status not in REFUSALS:
            raise
        return Notice("error", t["board_refused"].format(title=title, reason=_reason(exc))), (
            exc.status
        )
    return Notice(
        "ok", t["board_moved"].format(title=title, column=_column_label(spec, move.to))
    ), 200


def _title(spec: BoardSpec, record: Mapping[str, Any]) -> str:
    title_field = spec.view.compiled.title_field
    if title_field and title_field not in spec.view.field_modes:
        title = views.display_value(spec.view.compiled, title_field, record, spec.lang)
        if title != "—":
            return title
    return f"#{record['id']}"


def _column_label(spec: BoardSpec, value: str | None) -> str:
    for option in spec.options:
        if option["value"] == value:
            return option["label"]
    return texts_for(spec.lang)["board_no_value"].format(field=spec.group.label(spec.lang))


def _reason(exc: PlatformError) -> str:
    """The service's own words: each issue's message, else the error's."""
    messages = list(dict.fromkeys(issue.message for issue in exc.issues if issue.message))
    return "; ".join(messages) if messages else exc.message


# -- rendering ---------------------------------------------------------------------------------


def _board_url(env: str, entity: str, field: str | None) -> str:
    base = f"/app/{env}/{entity}/board"
    return f"{base}?{urlencode({'field': field})}" if field else base


def _render(
    request: Request,
    session: WebSession,
    env: str,
    spec: BoardSpec,
    *,
    notice: Notice | None,
    status: int,
    partial: bool,
) -> Response:
    """The board page, or only its board (``_board.html``) for an htmx request."""
    lang = spec.lang
    entity = spec.view.compiled.name
    context: dict[str, Any] = {
        "entity": entity,
        "entity_label": spec.view.label(lang),
        "board": {
            "field": spec.group.name,
            "field_label": spec.group.label(lang),
            "amount_label": spec.amount.label(lang) if spec.amount is not None else None,
            "columns": _columns(request, session, env, spec),
        },
        "group_fields": [(n, f.label(lang)) for n, f in choice_fields(spec.view).items()],
        "move_url": f"/app/{env}/{entity}/board/move",
        "notice": notice,
    }
    if not partial:
        return pages.page(
            request,
            "board.html",
            lang=lang,
            status=status,
            session=session,
            env=env,
            current_entity=entity,
            **context,
        )
    html = pages.templates.get_template("_board.html").render(
        t=texts_for(lang), lang=lang, session=session, env=env, **context
    )
    return Response(html, status_code=status, media_type="text/html")
