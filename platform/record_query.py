"""Listing records: filters, search, sort, keyset pages, field selection, titles, counts.

Two steps: :func:`plan_list` checks a :class:`ListRequest` against the entity
and reports every problem at once (:class:`Invalid`, paths such as
``/where/and/1/value`` or ``/query/amount__ge``); :func:`run_list` runs the
checked :class:`ListQuery` on a connection. :func:`list_records` does both
for Python callers; :func:`list_in_environment` opens the environment for the
HTTP routes. Requests come from a JSON body or a query string
(:mod:`formloom.platform.list_request`).

Decisions:

- Soft-deleted rows are left out unless ``include_deleted``.
- Sort: the client's keys, then ``id`` (in the direction of the first key) so
  every row has one place; empty values last in both directions (see
  :mod:`formloom.platform.list_cursor`). Without a sort: newest first (``-id``).
- Search (``q``): every whitespace-separated term must occur, case-insensitively,
  in one of the searchable text fields (those flagged ``searchable``, else the
  title field): ``ILIKE '%term%'``, which finds Chinese substrings on both
  databases. On PostgreSQL, publishing gives searchable fields a pg_trgm index
  when the extension is available (``formloom.platform.schema_sync``).
- Access (:mod:`formloom.platform.access`): the principal's read scope is one
  more SQL condition on the page and the count; fields hidden from the
  principal are not returned, and filtering, sorting, selecting or searching
  on them is refused as if they did not exist; a lookup's title is only shown
  when the principal may read the looked-up record.
- Every problem of a request has an English and a Chinese message (``lang``).
- Totals: exact up to :data:`COUNT_BOUND` (``count(*)`` over a subquery limited
  to one row more); beyond it ``total_is_exact`` is false and ``total`` is the
  planner's estimate on PostgreSQL (``EXPLAIN``, never below the bound) or the
  bound on SQLite. A first page that holds every row needs no count query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Connection,
    Executable,
    Select,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from formloom.engine.conditions import (
    TEXT_KINDS,
    AllOf,
    AnyOf,
    Condition,
    ConditionInvalid,
    FieldTest,
    Not,
    condition_fields,
    condition_from_params,
    parse_condition,
    storage_kind,
)
from formloom.engine.errors import Issue, pointer
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named
from formloom.platform.access import Access
from formloom.platform.conditions_sql import condition_clause, text_contains
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.env_transaction import Actor, env_transaction
from formloom.platform.errors import Invalid, NotFound
from formloom.platform.list_cursor import (
    CursorInvalid,
    SortKey,
    decode_cursor,
    encode_cursor,
    order_by,
    split_after_clause,
)
from formloom.platform.list_request import DEFAULT_LIMIT, MAX_LIMIT, ListRequest
from formloom.platform.record_errors import say
from formloom.platform.record_json import SYSTEM_FIELDS, record_to_json

#: Totals are exact up to this many rows.
COUNT_BOUND = 10_000
MAX_SORT_KEYS = 8
MAX_SEARCH = 200
MAX_SEARCH_TERMS = 10
#: Loads another published entity of the same environment (lookup targets).
EntityLoader = Callable[[str], RuntimeEntity]


@dataclass(frozen=True)
class ListQuery:
    """A checked list request, ready to run."""

    condition: Condition | None
    sort: tuple[SortKey, ...]
    after: tuple[Any, ...] | None
    limit: int
    fields: tuple[str, ...]
    search_terms: tuple[str, ...]
    search_fields: tuple[str, ...]
    include_deleted: bool
    with_total: bool
    expand_titles: bool


@dataclass(frozen=True)
class ListPage:
    """One page: records as JSON, the cursor of the next page, and the total."""

    items: list[dict[str, Any]]
    next: str | None
    total: int | None
    total_is_exact: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "next": self.next,
            "total": self.total,
            "total_is_exact": self.total_is_exact,
        }


def list_records(
    conn: Connection,
    entity: RuntimeEntity,
    *,
    where: Condition | Mapping[str, Any] | None = None,
    filters: Sequence[tuple[str, str]] = (),
    sort: Sequence[str] = (),
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    fields: Sequence[str] | None = None,
    search: str | None = None,
    expand_titles: bool = True,
    with_total: bool = True,
    include_deleted: bool = False,
    timezone: str = DEFAULT_TIMEZONE,
    now: datetime | None = None,
    entity_loader: EntityLoader | None = None,
    access: Access | None = None,
) -> ListPage:
    """One page of ``entity``'s records; :class:`Invalid` lists every bad input.

    ``sort`` items are field names, ``-`` first for descending. ``after`` is the
    ``next`` cursor of the previous page (same sort). ``entity_loader`` loads
    lookup targets for title expansion (needed when a selected lookup has values).
    ``now`` (default: the current time) resolves relative dates in ``timezone``.
    ``access`` applies a principal's read scope and hidden fields (default: none).
    """
    request = ListRequest(
        where=where,
        filters=list(filters),
        sort=list(sort),
        after=after,
        limit=limit,
        fields=None if fields is None else list(fields),
        search=search,
        include_deleted=include_deleted,
        with_total=with_total,
        expand_titles=expand_titles,
        timezone=timezone,
    )
    query = plan_list(entity, request, now=now or datetime.now(UTC), access=access)
    return run_list(conn, entity, query, entity_loader=entity_loader, access=access)


def list_in_environment(
    workspace: Workspace,
    env: str,
    entity_name: str,
    request: ListRequest,
    *,
    principal: Actor,
    lang: str = "en",
) -> ListPage:
    """A page of entity ``entity_name`` in environment ``env`` as ``principal`` may see it
    (a principal, or a request's credential: see :mod:`formloom.platform.env_transaction`)."""
    namespace = workspace.cache_key
    with env_transaction(workspace, env, principal, readonly=True, entity=entity_name) as (
        conn,
        access,
    ):
        access.require(entity_name, "read", lang=lang)
        entity = load_entity(conn, namespace=namespace, env=env, name=entity_name)
        query = plan_list(entity, request, now=datetime.now(UTC), access=access, lang=lang)

        def loader(name: str) -> RuntimeEntity:
            return load_entity(conn, namespace=namespace, env=env, name=name)

        return run_list(conn, entity, query, entity_loader=loader, access=access)


# -- checking a request -------------------------------------------------------------------------


def plan_list(
    entity: RuntimeEntity,
    request: ListRequest,
    *,
    now: datetime,
    access: Access | None = None,
    lang: str = "en",
) -> ListQuery:
    """Check ``request`` against ``entity``; :class:`Invalid` lists every problem.

    With ``access``, fields hidden from the principal count as unknown. Messages are
    in Chinese when ``lang`` is ``zh``.
    """
    hidden = access.hidden(entity.name) if access is not None else frozenset()
    issues = [problem.issue(lang) for problem in request.problems]
    at = request.at
    tz = timezone_named(request.timezone)
    if tz is None:
        issues.append(
            Issue(
                at + "/timezone",
                "unknown_timezone",
                say(
                    lang,
                    f"unknown timezone `{request.timezone}`; use an IANA name such as "
                    f"{DEFAULT_TIMEZONE} or UTC",
                    f"不认识的时区 `{request.timezone}`；请使用 IANA 时区名，"
                    f"例如 {DEFAULT_TIMEZONE} 或 UTC",
                ),
            )
        )
        tz = timezone_named(DEFAULT_TIMEZONE)
    assert tz is not None
    condition = _condition(entity, request, now=now, tz=tz, issues=issues, lang=lang)
    if condition is not None and hidden:
        issues += _hidden_in_condition(entity, condition, hidden, at=at, lang=lang)
    sort = _sort_keys(entity, request.sort, at=at, issues=issues, hidden=hidden, lang=lang)
    after = None
    if request.after:
        try:
            after = tuple(decode_cursor(request.after, sort))
        except CursorInvalid as exc:
            issues.append(Issue(at + "/after", exc.code, say(lang, str(exc), _CURSOR_ZH[exc.code])))
    if not 1 <= request.limit <= MAX_LIMIT:
        issues.append(
            Issue(
                at + "/limit",
                "limit_out_of_range",
                say(
                    lang,
                    f"limit {request.limit} is out of range: ask for 1 to {MAX_LIMIT} records "
                    "per page and follow `next` for more",
                    f"limit {request.limit} 超出范围：每页可取 1 到 {MAX_LIMIT} 条记录，"
                    "更多记录请跟随 `next` 翻页",
                ),
            )
        )
    selected = _selected_fields(
        entity, request.fields, at=at, issues=issues, hidden=hidden, lang=lang
    )
    terms, searched = _search(
        entity, request.search, at=at, issues=issues, hidden=hidden, lang=lang
    )
    if issues:
        message = say(
            lang,
            f"{len(issues)} problem(s) in the list request",
            f"列表请求有 {len(issues)} 处问题",
        )
        raise Invalid(message, issues=issues)
    return ListQuery(
        condition=condition,
        sort=sort,
        after=after,
        limit=request.limit,
        fields=selected,
        search_terms=terms,
        search_fields=searched,
        include_deleted=request.include_deleted,
        with_total=request.with_total,
        expand_titles=request.expand_titles,
    )


#: The Chinese messages of the cursor errors (``list_cursor.CursorInvalid``), by code.
_CURSOR_ZH = {
    "cursor_sort_mismatch": (
        "游标属于另一种排序的列表；请使用返回该游标的请求的排序，或去掉 `after` 从头开始"
    ),
    "invalid_cursor": (
        "`after` 不是本接口返回的游标；请原样传回上一页的 `next`，或去掉 `after` 从头开始"
    ),
}


def _condition(
    entity: RuntimeEntity,
    request: ListRequest,
    *,
    now: datetime,
    tz: tzinfo,
    issues: list[Issue],
    lang: str,
) -> Condition | None:
    parts: list[Condition] = []
    where = request.where
    if isinstance(where, FieldTest | AllOf | AnyOf | Not):
        parts.append(where)
    elif where is not None and where != {}:
        try:
            parts.append(
                parse_condition(
                    where, entity.compiled, now=now, tz=tz, at=request.at + "/where", lang=lang
                )
            )
        except ConditionInvalid as exc:
            issues.extend(exc.issues)
    try:
        from_params = condition_from_params(
            request.filters, entity.compiled, now=now, tz=tz, at=request.at, lang=lang
        )
    except ConditionInvalid as exc:
        issues.extend(exc.issues)
    else:
        if from_params is not None:
            parts.append(from_params)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _hidden_in_condition(
    entity: RuntimeEntity, condition: Condition, hidden: frozenset[str], *, at: str, lang: str
) -> list[Issue]:
    """A filter on a field the principal may not see is refused like an unknown field."""
    used = sorted(_fields_in(condition) & hidden)
    return [
        Issue(
            at + "/where",
            "unknown_field",
            say(
                lang,
                f"cannot filter on `{name}`: it is not a field of `{entity.name}` you may see",
                f"不能按 `{name}` 筛选：它不是您可以查看的 `{entity.name}` 字段",
            ),
        )
        for name in used
    ]


def _fields_in(condition: Condition) -> set[str]:
    if isinstance(condition, FieldTest):
        return {condition.field}
    if isinstance(condition, Not):
        return _fields_in(condition.condition)
    found: set[str] = set()
    for part in condition.conditions:
        found |= _fields_in(part)
    return found


def _sort_keys(
    entity: RuntimeEntity,
    spelled: Sequence[str],
    *,
    at: str,
    issues: list[Issue],
    hidden: frozenset[str] = frozenset(),
    lang: str = "en",
) -> tuple[SortKey, ...]:
    fields = {n: f for n, f in condition_fields(entity.compiled).items() if n not in hidden}
    keys: list[SortKey] = []
    for i, item in enumerate(spelled):
        path = at + pointer("sort", i)
        descending = item.startswith("-")
        name = item[1:] if descending else item
        compiled = fields.get(name)
        if compiled is None:
            issues.append(
                Issue(
                    path,
                    "unknown_field",
                    say(
                        lang,
                        f"cannot sort by `{item}`: `{name}` is not a field of `{entity.name}`; "
                        f"sort by one of: {', '.join(fields)} (prefix `-` for descending)",
                        f"不能按 `{item}` 排序：`{name}` 不是 `{entity.name}` 的字段；"
                        f"可排序字段：{', '.join(fields)}（前加 `-` 表示降序）",
                    ),
                )
            )
            continue
        kind = storage_kind(compiled)
        if kind == "json":
            issues.append(
                Issue(
                    path,
                    "not_sortable",
                    say(
                        lang,
                        f"cannot sort by `{name}`: {compiled.field_type.name} values are lists "
                        "or structured; sort by another field",
                        f"不能按 `{name}` 排序：{compiled.field_type.name} 的值是列表或结构化数据；"
                        "请按其他字段排序",
                    ),
                )
            )
            continue
        if any(k.field == name for k in keys):
            issues.append(
                Issue(
                    path,
                    "duplicate_sort",
                    say(lang, f"`{name}` is in the sort twice", f"`{name}` 在排序中出现了两次"),
                )
            )
            continue
        keys.append(SortKey(name, descending, kind))
    if len(spelled) > MAX_SORT_KEYS:
        issues.append(
            Issue(
                at + "/sort",
                "too_many_keys",
                say(
                    lang,
                    f"sort by at most {MAX_SORT_KEYS} fields",
                    f"最多按 {MAX_SORT_KEYS} 个字段排序",
                ),
            )
        )
    ids = [i for i, k in enumerate(keys) if k.field == "id"]
    if ids:
        return tuple(keys[: ids[0] + 1])
    descending = keys[0].descending if keys else True
    return (*keys, SortKey("id", descending, "integer"))


def _selected_fields(
    entity: RuntimeEntity,
    names: Sequence[str] | None,
    *,
    at: str,
    issues: list[Issue],
    hidden: frozenset[str] = frozenset(),
    lang: str = "en",
) -> tuple[str, ...]:
    user_fields = {
        n: f
        for n, f in entity.compiled.fields.items()
        if not f.field_type.virtual and n not in hidden
    }
    if names is None:
        return tuple(user_fields)
    selected = []
    for i, name in enumerate(names):
        if name in user_fields:
            if name not in selected:
                selected.append(name)
        elif name not in SYSTEM_FIELDS:
            issues.append(
                Issue(
                    at + pointer("fields", i),
                    "unknown_field",
                    say(
                        lang,
                        f"cannot select `{name}`: it is not a field of `{entity.name}`; choose "
                        f"from: {', '.join(user_fields)} (system fields are always returned)",
                        f"不能选择 `{name}`：它不是 `{entity.name}` 的字段；可选："
                        f"{', '.join(user_fields)}（系统字段总会返回）",
                    ),
                )
            )
    return tuple(selected)


def searchable_fields(entity: RuntimeEntity) -> tuple[str, ...]:
    """The text fields a search looks in: those flagged ``searchable``, else the title field."""
    text_fields = {
        name
        for name, compiled in entity.compiled.fields.items()
        if storage_kind(compiled) in TEXT_KINDS
    }
    flagged = tuple(
        name for name in text_fields if entity.compiled.fields[name].definition.searchable
    )
    if flagged:
        return tuple(n for n in entity.compiled.fields if n in flagged)
    title = entity.compiled.title_field
    return (title,) if title in text_fields else ()


def _search(
    entity: RuntimeEntity,
    search: str | None,
    *,
    at: str,
    issues: list[Issue],
    hidden: frozenset[str] = frozenset(),
    lang: str = "en",
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    text = (search or "").strip()
    if not text:
        return (), ()
    path = at + "/q"
    terms = tuple(dict.fromkeys(text.split()))
    searched = tuple(n for n in searchable_fields(entity) if n not in hidden)
    if len(text) > MAX_SEARCH:
        issues.append(
            Issue(
                path,
                "too_long",
                say(
                    lang,
                    f"search for at most {MAX_SEARCH} characters",
                    f"搜索内容最多 {MAX_SEARCH} 个字符",
                ),
            )
        )
    elif len(terms) > MAX_SEARCH_TERMS:
        issues.append(
            Issue(
                path,
                "too_many_terms",
                say(
                    lang,
                    f"search for at most {MAX_SEARCH_TERMS} words",
                    f"搜索词最多 {MAX_SEARCH_TERMS} 个",
                ),
            )
        )
    if not searched:
        issues.append(
            Issue(
                path,
                "not_searchable",
                say(
                    lang,
                    f"entity `{entity.name}` has no searchable fields: flag text fields "
                    "`searchable: true` or give it a text title field",
                    f"实体 `{entity.name}` 没有可搜索的字段：请把文本字段设为 "
                    "`searchable: true`，或设置文本类型的标题字段",
                ),
            )
        )
    return terms, searched


# -- running a query ----------------------------------------------------------------------------


def run_list(
    conn: Connection,
    entity: RuntimeEntity,
    query: ListQuery,
    *,
    entity_loader: EntityLoader | None = None,
    access: Access | None = None,
) -> ListPage:
    """Run a checked query: one page, its next cursor, titles and (if asked) the total.

    ``access`` limits the rows to the principal's read scope (a SQL condition).
    """
    table = entity.table
    filters = _filters(entity, query, conn.dialect.name)
    scope = access.scope_clause(entity, "read") if access is not None else None
    if scope is not None:
        filters.append(scope)
    wanted = dict.fromkeys(
        [*SYSTEM_FIELDS, "deleted_at", *query.fields, *(k.field for k in query.sort)]
    )
    ordered = (
        select(*(table.c[name] for name in wanted))
        .where(*filters)
        .order_by(*order_by(query.sort, table))
    )
    statement, tail = ordered, None
    if query.after is not None:
        after, tail = split_after_clause(query.sort, query.after, table)
        statement = ordered.where(after)
    rows = _fetch(conn, statement.limit(query.limit + 1))
    if tail is not None and len(rows) <= query.limit:
        # the rows beyond the cursor ran out before the page did: the empty values follow
        rows += _fetch(conn, ordered.where(tail).limit(query.limit + 1 - len(rows)))
    page = rows[: query.limit]
    more = len(rows) > query.limit
    items = [record_to_json(entity, row, fields=query.fields) for row in page]
    if query.expand_titles:
        _add_titles(conn, entity, query.fields, page, items, entity_loader, access)
    total, exact = None, False
    if query.with_total:
        if query.after is None and not more:
            total, exact = len(page), True
        else:
            total, exact = _count(conn, entity, filters)
    cursor = encode_cursor(query.sort, page[-1]) if more else None
    return ListPage(items=items, next=cursor, total=total, total_is_exact=exact)


def _fetch(conn: Connection, statement: Select[Any]) -> list[dict[str, Any]]:
    """The rows of ``statement`` as dicts by column name."""
    result = conn.execute(statement)
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def _filters(entity: RuntimeEntity, query: ListQuery, dialect: str) -> list[ColumnElement[bool]]:
    table = entity.table
    filters: list[ColumnElement[bool]] = []
    if not query.include_deleted:
        filters.append(table.c.deleted_at.is_(None))
    if query.condition is not None:
        filters.append(condition_clause(query.condition, table, dialect=dialect))
    for term in query.search_terms:
        columns = [table.c[name] for name in query.search_fields]
        filters.append(_any_contains(columns, term))
    return filters


def _any_contains(columns: Sequence[ColumnElement[Any]], term: str) -> ColumnElement[bool]:
    return or_(*(text_contains(column, term) for column in columns))


def _count(
    conn: Connection, entity: RuntimeEntity, filters: Sequence[ColumnElement[bool]]
) -> tuple[int, bool]:
    matching = select(literal(1)).select_from(entity.table).where(*filters)
    bounded = matching.limit(COUNT_BOUND + 1).subquery()
    counted = int(conn.execute(select(func.count()).select_from(bounded)).scalar_one())
    if counted <= COUNT_BOUND:
        return counted, True
    if conn.dialect.name == "postgresql":
        return max(_estimate(conn, matching), COUNT_BOUND), False
    return COUNT_BOUND, False


class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement (PostgreSQL): the planner's row estimate.

    Its cache key is the statement's, so it is compiled once per list shape, like the
    statements it explains, not at every request.
    """

    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's declaration)
        ("statement", InternalTraversal.dp_clauseelement)
    ]
    #: The plan is one untyped value: a compiled form reused from the cache has no selected
    #: columns to match with the new statement's.
    _all_selected_columns: ClassVar[tuple[Any, ...]] = ()

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _estimate(conn: Connection, statement: Select[Any]) -> int:
    plan = conn.execute(_Explain(statement)).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _add_titles(
    conn: Connection,
    entity: RuntimeEntity,
    selected: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    items: list[dict[str, Any]],
    entity_loader: EntityLoader | None,
    access: Access | None = None,
) -> None:
    """Give each item ``_titles``: the title of every selected lookup's record (or None).

    One query per looked-up entity for the whole page; a lookup whose target has
    no title field, is no longer published, or whose record (or title field) the
    principal may not read, gets None.
    """
    lookups: dict[str, str] = {}
    for name in selected:
        compiled = entity.compiled.fields[name]
        target = compiled.field_type.references(compiled.definition.options)
        if target is not None:
            lookups[name] = target
    if not lookups:
        return
    titles: dict[str, dict[int, Any]] = {}
    for target in set(lookups.values()):
        ids = {row[n] for row in rows for n, t in lookups.items() if t == target}
        ids.discard(None)
        titles[target] = _titles_of(conn, target, ids, entity_loader, access) if ids else {}
    for row, item in zip(rows, items, strict=True):
        item["_titles"] = {
            name: titles[target].get(row[name]) if row[name] is not None else None
            for name, target in lookups.items()
        }


def _titles_of(
    conn: Connection,
    target_name: str,
    ids: Iterable[int],
    entity_loader: EntityLoader | None,
    access: Access | None = None,
) -> dict[int, Any]:
    if entity_loader is None:
        raise ValueError("expanding lookup titles needs an `entity_loader`")
    try:
        target = entity_loader(target_name)
    except NotFound:
        return {}
    title_field = target.compiled.title_field
    if title_field is None or title_field not in target.compiled.fields:
        return {}
    compiled = target.compiled.fields[title_field]
    table = target.table
    query = select(table.c.id, table.c[title_field]).where(table.c.id.in_(sorted(ids)))
    if access is not None:
        if not access.may(target_name, "read") or title_field in access.hidden(target_name):
            return {}
        scope = access.scope_clause(target, "read")
        if scope is not None:
            query = query.where(scope)
    found = conn.execute(query)
    return {row[0]: compiled.to_json(row[1]) for row in found}
