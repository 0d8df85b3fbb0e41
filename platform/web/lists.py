"""The list page of an entity: columns, sort, search and paging, read through the records service.

Everything a viewer sees goes through :func:`~formloom.platform.record_query.list_in_environment`
with their principal, so read scopes and hidden fields apply as in the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from formloom.platform.list_request import ListRequest
from formloom.platform.record_query import list_in_environment
from formloom.platform.web import pages, views
from formloom.platform.web.session import web_session
from formloom.platform.web.texts import request_language

PAGE_SIZE = 25

router = APIRouter(prefix="/app", include_in_schema=False)


@router.get("/{env}/{entity}")
def record_list(
    request: Request,
    env: str,
    entity: str,
    q: str | None = None,
    sort: str | None = None,
    after: str | None = None,
) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        view = pages.entity_view(request, session, env, entity, "view", "read")
        columns = views.list_columns(view)
        listing = ListRequest(
            sort=[sort] if sort else [],
            after=after or None,
            limit=PAGE_SIZE,
            fields=columns,
            search=q or None,
        )
        page = list_in_environment(
            pages.workspace(request), env, entity, listing, principal=session.principal, lang=lang
        )
        compiled = view.compiled
        rows = [
            {
                "id": item["id"],
                "cells": [views.display_value(compiled, c, item, lang) for c in columns],
            }
            for item in page.items
        ]
        base = f"/app/{env}/{entity}"
        return pages.page(
            request,
            "list.html",
            lang=lang,
            session=session,
            env=env,
            current_entity=entity,
            entity=entity,
            entity_label=view.label(lang),
            columns=[_column(view, name, lang, base, q, sort) for name in columns],
            rows=rows,
            q=q or "",
            total=page.total,
            may_create=view.access.may(entity, "create"),
            next_url=f"{base}?{pages.query(q=q, sort=sort, after=page.next)}"
            if page.next
            else None,
            first_url=f"{base}?{pages.query(q=q, sort=sort)}" if after else None,
        )

    return pages.guarded(request, lang, work)


def _column(
    view: views.EntityView, name: str, lang: str, base: str, q: str | None, sort: str | None
) -> dict[str, Any]:
    field = view.compiled.fields[name]
    sortable = field.field_type.name in views.SORTABLE_TYPES
    descending = sort == name
    wanted = f"-{name}" if descending else name
    return {
        "name": name,
        "label": field.label(lang),
        "sort_url": f"{base}?{pages.query(q=q, sort=wanted)}" if sortable else None,
        "sorted": "asc" if sort == name else "desc" if sort == f"-{name}" else None,
    }
