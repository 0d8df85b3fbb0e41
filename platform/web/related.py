"""Related lists and attachments on the record page of the staff web app.

A record page lists, for every entity with a lookup pointing at the record's
entity, the first records that point at this record (an account's contacts),
with their count, a link that pages through all of them and a "New" link that
opens the other entity's form with the lookup filled in. A layout that names
related lists (``related_lists``) chooses which ones, their columns, sort and
size; without one every readable back-lookup is listed.

Every read goes through :func:`~formloom.platform.record_query.list_in_environment`
with the viewer's principal: an entity the viewer may not read, or whose lookup
back is hidden from them, is not listed, and read scopes apply to the rows.
Multi-lookups are not listed: the list service cannot filter on them yet
(``docs/relations.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from formloom.engine.forms import Form, payload_from_form
from formloom.engine.forms.model import RelatedList
from formloom.engine.records.compiled import CompiledEntity
from formloom.platform.errors import PlatformError
from formloom.platform.list_request import ListRequest
from formloom.platform.record_query import list_in_environment
from formloom.platform.web import pages, views
from formloom.platform.web.session import WebSession

#: Rows a related list shows on the record page unless its layout says otherwise.
PANEL_ROWS = 10
#: Rows per page when one related list is opened in full (``?related=``).
FULL_ROWS = 50
#: Columns of a related list a layout does not describe (its title field first).
DEFAULT_COLUMNS = 4
_FILE_TYPES = frozenset(("file", "image"))
_IMAGE_TYPES = frozenset(("image/png", "image/jpeg", "image/gif", "image/webp"))


@dataclass(frozen=True)
class RelatedSpec:
    """One related list to show: ``entity`` records whose ``field`` is this record's id."""

    entity: CompiledEntity
    field: str
    columns: tuple[str, ...]
    sort: tuple[str, ...]
    limit: int
    label: str

    @property
    def key(self) -> str:
        """Names the list in the ``related`` query parameter (``contact.account``)."""
        return f"{self.entity.name}.{self.field}"


def record_panel(
    request: Request,
    session: WebSession,
    env: str,
    view: views.EntityView,
    record: Mapping[str, Any],
) -> Mapping[str, Any] | None:
    """What the record page shows of this area (None: nothing).

    ``lists``: the related lists the viewer may read; ``attachments``: the
    record's file and image fields with their files. ``?related=<entity>.<field>``
    (and ``after``, its cursor) opens one list in full, paged.
    """
    lang = session.lang
    opened = request.query_params.get("related")
    lists = [
        _related_list(request, session, env, view, spec, record["id"], opened)
        for spec in related_specs(view, lang)
    ]
    attachments = _attachments(view, record, env, lang)
    if not lists and not attachments:
        return None
    return {"lists": lists, "attachments": attachments}


# -- which lists -------------------------------------------------------------------------------


def related_specs(view: views.EntityView, lang: str) -> list[RelatedSpec]:
    """The related lists of the viewer's layout, else every readable lookup back."""
    named = view.layout.related_lists if view.layout is not None else []
    if named:
        specs = (_named_spec(view, related, lang) for related in named)
    else:
        specs = (
            _default_spec(view, other, name, lang)
            for other in view.entities.values()
            for name in _lookups_to(other, view.compiled.name)
        )
    return [spec for spec in specs if spec is not None and _may_list(view, spec)]


def _lookups_to(entity: CompiledEntity, target: str) -> list[str]:
    """``entity``'s single lookups pointing at ``target`` (multi-lookups cannot be filtered)."""
    return [
        name
        for name, compiled in entity.fields.items()
        if compiled.field_type.name == "lookup"
        and compiled.definition.options.get("entity") == target
    ]


def _may_list(view: views.EntityView, spec: RelatedSpec) -> bool:
    """The viewer may read the related entity and see its lookup back (or filtering fails)."""
    name = spec.entity.name
    return view.access.may(name, "read") and spec.field not in view.access.hidden(name)


def _named_spec(view: views.EntityView, related: RelatedList, lang: str) -> RelatedSpec | None:
    """A related list as the layout describes it (checked when the layout was published)."""
    other = view.entities.get(related.entity)
    if other is None:
        return None
    backs = _lookups_to(other, view.compiled.name)
    field = related.field if related.field is not None else (backs[0] if backs else None)
    if field is None or field not in backs:
        return None
    hidden = view.access.hidden(other.name)
    label = related.label or other.document.label
    return RelatedSpec(
        entity=other,
        field=field,
        columns=tuple(c for c in related.columns if c not in hidden),
        sort=tuple(
            ("-" if k.direction == "desc" else "") + k.field
            for k in related.sort
            if k.field not in hidden
        ),
        limit=related.limit,
        label=label.zh if lang == "zh" else label.en,
    )


def _default_spec(
    view: views.EntityView, other: CompiledEntity, field: str, lang: str
) -> RelatedSpec:
    """A related list no layout describes: the title and a few listable fields, newest first."""
    hidden = view.access.hidden(other.name)
    names = [
        name
        for name, compiled in other.fields.items()
        if name != field
        and name not in hidden
        and compiled.field_type.name not in views.UNLISTED_TYPES
        and not compiled.field_type.virtual
    ]
    title = other.title_field
    if title in names:
        names.remove(title)
        names.insert(0, title)
    label = other.document.label
    entity_label = label.zh if lang == "zh" else label.en
    several = len(_lookups_to(other, view.compiled.name)) > 1
    return RelatedSpec(
        entity=other,
        field=field,
        columns=tuple(names[:DEFAULT_COLUMNS]),
        sort=("-id",),
        limit=PANEL_ROWS,
        label=f"{entity_label} ({other.fields[field].label(lang)})" if several else entity_label,
    )


# -- one list ----------------------------------------------------------------------------------


def _related_list(
    request: Request,
    session: WebSession,
    env: str,
    view: views.EntityView,
    spec: RelatedSpec,
    record_id: int,
    opened: str | None,
) -> dict[str, Any]:
    """The rows of one related list as the viewer may read them, with its links."""
    lang = session.lang
    full = opened == spec.key
    after = request.query_params.get("after") if full else None
    listing = ListRequest(
        filters=[(spec.field, str(record_id))],
        sort=list(spec.sort),
        after=after or None,
        limit=FULL_ROWS if full else spec.limit,
        fields=list(spec.columns) or None,
    )
    page = list_in_environment(
        pages.workspace(request), env, spec.entity.name, listing, principal=session.principal
    )
    base = request.url.path
    entity = spec.entity
    return {
        "key": spec.key,
        "id": "related-" + spec.key.replace(".", "-"),
        "label": spec.label,
        "entity": entity.name,
        "columns": [_column_label(entity, name, lang) for name in spec.columns],
        "rows": [
            {
                "url": f"/app/{env}/{entity.name}/{item['id']}",
                "id": item["id"],
                "cells": [views.display_value(entity, c, item, lang) for c in spec.columns],
            }
            for item in page.items
        ],
        "total": page.total,
        "full": full,
        "all_url": None if full else f"{base}?{urlencode({'related': spec.key})}",
        "next_url": f"{base}?{urlencode({'related': spec.key, 'after': page.next})}"
        if full and page.next
        else None,
        "back_url": base if full else None,
        "list_url": _list_url(env, spec, record_id),
        "new_url": _new_url(view, env, spec, record_id),
    }


def _list_url(env: str, spec: RelatedSpec, record_id: int) -> str:
    """The other entity's list page filtered to this record (its ``filter`` JSON)."""
    condition = {"field": spec.field, "op": "eq", "value": record_id}
    query = urlencode({"filter": json.dumps(condition, separators=(",", ":"))})
    return f"/app/{env}/{spec.entity.name}?{query}"


def _column_label(entity: CompiledEntity, name: str, lang: str) -> str:
    found = entity.fields.get(name)
    return found.label(lang) if found is not None else name


def _new_url(view: views.EntityView, env: str, spec: RelatedSpec, record_id: int) -> str | None:
    """The other entity's new-record form with the lookup filled, if the viewer may use it."""
    name, access = spec.entity.name, view.access
    if not access.may(name, "create") or spec.field in access.read_only(name):
        return None
    return f"/app/{env}/{spec.entity.name}/new?{urlencode({spec.field: record_id})}"


# -- attachments -------------------------------------------------------------------------------


def _attachments(
    view: views.EntityView, record: Mapping[str, Any], env: str, lang: str
) -> list[dict[str, Any]]:
    """The record's file and image fields the viewer sees, each with its files."""
    shown = []
    for name, compiled in view.compiled.fields.items():
        if compiled.field_type.name not in _FILE_TYPES or name not in record:
            continue
        files = [_file(env, item) for item in _file_items(record.get(name))]
        if files:
            shown.append({"label": compiled.label(lang), "files": files})
    return shown


def _file_items(value: Any) -> Iterable[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, Mapping) and item.get("id")]


def _file(env: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A download link through the files API (inline for a raster image's thumbnail)."""
    url = f"/api/envs/{env}/files/{item['id']}"
    image = item.get("content_type") in _IMAGE_TYPES
    return {
        "name": str(item.get("name") or item["id"]),
        "size": human_size(item.get("size")),
        "url": url,
        "thumbnail": f"{url}?disposition=inline" if image else None,
    }


def human_size(size: Any) -> str:
    """``1.5 MB``: sizes the way people read them (empty when unknown)."""
    if not isinstance(size, int):
        return ""
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""


# -- the new-record form's prefill and lookup titles --------------------------------------------


def prefill(
    request: Request, session: WebSession, env: str, form: Form
) -> Mapping[str, Any] | None:
    """Values for a new record's form from the query (``?account=5``), or None.

    Only fields the viewer may edit on this form are taken (read through the
    form's widgets, like a post); a lookup is kept only when the viewer may read
    the record it names, whose title the form then shows.
    """
    items = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key.partition(".")[0] in form.fields and form.fields[key.partition(".")[0]].editable
    ]
    if not items:
        return None
    values = dict(payload_from_form(form, items))
    titles: dict[str, Any] = {}
    for name, value in list(values.items()):
        target = _single_lookup_target(form, name)
        if target is None:
            continue
        title_field = form.fields[name].options.get("title_field")
        title = _readable_title(request, session, env, target, title_field, value)
        if title is None:
            del values[name]
        else:
            titles[name] = title
    values["_titles"] = titles
    return values


def _single_lookup_target(form: Form, name: str) -> str | None:
    compiled = form.fields[name].compiled
    if compiled.field_type.name != "lookup":
        return None
    target = compiled.definition.options.get("entity")
    return str(target) if target else None


def _readable_title(
    request: Request,
    session: WebSession,
    env: str,
    target: str,
    title_field: str | None,
    record_id: Any,
) -> str | None:
    """The title of ``target`` record ``record_id`` if the viewer may read it (else None)."""
    if not isinstance(record_id, int):
        return None
    listing = ListRequest(filters=[("id", str(record_id))], limit=1, with_total=False)
    try:
        page = list_in_environment(
            pages.workspace(request), env, target, listing, principal=session.principal
        )
    except PlatformError:
        return None
    if not page.items:
        return None
    title = page.items[0].get(title_field) if title_field else None
    return str(title) if title not in (None, "") else f"#{record_id}"


def with_titles(
    request: Request, session: WebSession, env: str, entity: str, record: Mapping[str, Any]
) -> dict[str, Any]:
    """``record`` with ``_titles``: its lookups' titles as the viewer may read them.

    The record API leaves titles to lists; the record page and the edit form show
    a lookup by its record's title, read here through the list service (so the
    targets' read scopes and hidden title fields apply).
    """
    listing = ListRequest(filters=[("id", str(record["id"]))], limit=1, with_total=False)
    page = list_in_environment(
        pages.workspace(request), env, entity, listing, principal=session.principal
    )
    titles = page.items[0].get("_titles", {}) if page.items else {}
    return {**record, "_titles": dict(titles)}
