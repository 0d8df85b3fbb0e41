"""HTTP routes that list records.

- ``GET  /api/envs/{env}/records/{entity}``: filters as query parameters
  (``?stage=won&amount__ge=100000``) or ``?where=<JSON condition>``, ``sort``,
  ``limit``, ``after``, ``fields``, ``q``.
- ``POST /api/envs/{env}/records/{entity}/query``: the same as a JSON body.

Both answer ``{"items": [...], "next": cursor|null, "total": n, "total_is_exact": bool}``;
every bad input comes back at once as a 422 problem+json. Like the other records
routes (:mod:`formloom.platform.api_records`), they are ``async def`` and run the
service in the thread pool themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from formloom.engine.conditions import OPERATORS
from formloom.platform import list_request, record_query
from formloom.platform.auth_deps import CredentialDep, CredentialRoute, LangDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(tags=["records"], route_class=CredentialRoute)


def _parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_LIST_PARAMETERS = [
    _parameter(
        "where",
        'A JSON condition, e.g. {"and": [{"field": "stage", "op": "eq", "value": "won"}, '
        '{"field": "amount", "op": "ge", "value": 100000}]}',
        {"type": "string"},
    ),
    _parameter(
        "sort",
        "Comma-separated fields, `-` for descending, e.g. `-amount,name` (ties: by id)",
        {"type": "string"},
    ),
    _parameter(
        "limit",
        f"Records per page, 1 to {list_request.MAX_LIMIT}",
        {"type": "integer", "default": list_request.DEFAULT_LIMIT},
    ),
    _parameter("after", "The `next` cursor of the previous page", {"type": "string"}),
    _parameter(
        "fields", "Comma-separated fields to return (system fields always)", {"type": "string"}
    ),
    _parameter(
        "q", "Search the searchable text fields (every word must occur)", {"type": "string"}
    ),
    _parameter("include_deleted", "Include soft-deleted records", {"type": "boolean"}),
    _parameter("with_total", "Count the matching records", {"type": "boolean", "default": True}),
    _parameter("expand_titles", "Add `_titles` of lookups", {"type": "boolean", "default": True}),
    _parameter(
        "timezone",
        "Timezone of relative dates",
        {"type": "string", "default": "Asia/Shanghai"},
    ),
]
_FILTERS = (
    "Any other parameter filters: `field=value` (equals) or `field__op=value` with op one of "
    f"{', '.join(OPERATORS)} (`gte`/`lte` also work). `in`, `not_in` and multi-choice "
    "`contains` take comma-separated values, `between` a comma-separated pair; date fields "
    "accept relative dates such as `this_month` or `last_n_days:7`."
)


@router.get(
    "/api/envs/{env}/records/{entity}",
    description=_FILTERS,
    openapi_extra={"parameters": _LIST_PARAMETERS},
)
async def list_records(
    env: str,
    entity: str,
    request: Request,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
) -> dict[str, Any]:
    """List records: filter, search, sort and page through them."""
    asked = list_request.request_from_query(request.query_params.multi_items())
    page = await run_in_threadpool(
        record_query.list_in_environment,
        workspace,
        env,
        entity,
        asked,
        principal=credential,
        lang=lang,
    )
    return page.as_dict()


QueryBody = Annotated[
    Any,
    Body(
        description=(
            "A list query: `where` (JSON condition), `sort` (list, `-` for descending), "
            "`limit`, `after`, `fields`, `q`, `include_deleted`, `with_total`, "
            "`expand_titles`, `timezone`"
        ),
        examples=[
            {
                "where": {
                    "or": [
                        {"field": "stage", "op": "eq", "value": "won"},
                        {"field": "amount", "op": "ge", "value": 100000},
                    ]
                },
                "sort": ["-amount", "name"],
                "limit": 50,
            }
        ],
    ),
]


@router.post("/api/envs/{env}/records/{entity}/query")
async def query_records(
    env: str,
    entity: str,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    body: QueryBody = None,
) -> dict[str, Any]:
    """List records with the query as a JSON body (for conditions too long for a URL)."""
    asked = list_request.request_from_body(body)
    page = await run_in_threadpool(
        record_query.list_in_environment,
        workspace,
        env,
        entity,
        asked,
        principal=credential,
        lang=lang,
    )
    return page.as_dict()
