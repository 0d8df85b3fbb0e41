"""Counts and sums of an entity's records grouped by one field, as a principal may see them.

A kanban board shows, per column, how many records it holds and the total of an
amount field, but it shows only the first cards of a column: its figures cannot
be added up from the cards without being wrong for a long column. One grouped
query answers every column at once. The request is checked by the list's
planner (:func:`~formloom.platform.record_query.plan_list`: unknown and hidden
fields are refused the same way), the condition compiled by the list's filter
compiler and the principal's read scope applied, so the figures count exactly
the records a list with the same condition would return.

Sums are exact: integers are summed as integers, decimal columns by the database
in their column type (see :mod:`formloom.platform.column_types`), the result
rounded half up to the field's scale as rollups are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from formloom.engine.conditions import storage_kind
from formloom.engine.errors import Issue, pointer
from formloom.engine.records.compiled import CompiledField
from formloom.platform.access import Access
from formloom.platform.conditions_sql import condition_clause
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.env_transaction import Actor, env_transaction
from formloom.platform.errors import Invalid
from formloom.platform.list_request import ListRequest
from formloom.platform.record_errors import say
from formloom.platform.record_query import ListQuery, plan_list

Number = int | Decimal


@dataclass(frozen=True)
class GroupTotals:
    """The records of one group: how many, and the sum of each summed field (0 when none)."""

    count: int
    sums: Mapping[str, Number]


def totals_by_group(
    workspace: Workspace,
    env: str,
    entity_name: str,
    *,
    group_by: str,
    sum_fields: Sequence[str] = (),
    where: Any = None,
    principal: Actor,
    lang: str = "en",
) -> dict[Any, GroupTotals]:
    """Count (and sum ``sum_fields`` of) the live records ``principal`` may read, per value
    of ``group_by`` (keys as the records API returns values; ``None`` for empty).

    ``where`` is a JSON condition as lists take it. Raises
    :class:`~formloom.platform.access.AccessDenied` without read permission and
    :class:`Invalid` for unknown or hidden fields, a ``group_by`` field whose values are
    structured, or a summed field that is not a number.
    """
    with env_transaction(workspace, env, principal, readonly=True, entity=entity_name) as (
        conn,
        access,
    ):
        access.require(entity_name, "read", lang=lang)
        entity = load_entity(conn, namespace=workspace.cache_key, env=env, name=entity_name)
        request = ListRequest(
            where=where,
            fields=[group_by, *sum_fields],
            with_total=False,
            expand_titles=False,
        )
        query = plan_list(entity, request, now=datetime.now(UTC), access=access)
        _check_fields(entity, group_by, sum_fields, lang)
        return _grouped(conn, entity, query, group_by, sum_fields, access)


def _check_fields(
    entity: RuntimeEntity, group_by: str, sum_fields: Sequence[str], lang: str
) -> None:
    """Group by a scalar column, sum number columns (known and visible: the planner checked)."""
    fields = entity.compiled.fields
    issues = []
    if storage_kind(fields[group_by]) == "json":
        issues.append(
            Issue(
                "/group_by",
                "not_groupable",
                say(
                    lang,
                    f"cannot group by `{group_by}`: its values are lists or structured; "
                    "group by a choice, text, number or date field",
                    f"不能按 `{group_by}` 分组：它的值是列表或结构化数据；"
                    "请按选项、文本、数字或日期字段分组",
                ),
            )
        )
    for i, name in enumerate(sum_fields):
        if storage_kind(fields[name]) not in ("integer", "decimal"):
            issues.append(
                Issue(
                    pointer("sum_fields", i),
                    "not_summable",
                    say(
                        lang,
                        f"cannot sum `{name}`: it is not a number field; sum an integer, "
                        "decimal or currency field",
                        f"不能对 `{name}` 求和：它不是数字字段；请选择整数、小数或金额字段",
                    ),
                )
            )
    if issues:
        raise Invalid(issues[0].message, issues=issues)


def _grouped(
    conn: Connection,
    entity: RuntimeEntity,
    query: ListQuery,
    group_by: str,
    sum_fields: Sequence[str],
    access: Access,
) -> dict[Any, GroupTotals]:
    table = entity.table
    filters: list[ColumnElement[bool]] = [table.c.deleted_at.is_(None)]
    if query.condition is not None:
        filters.append(condition_clause(query.condition, table, dialect=conn.dialect.name))
    scope = access.scope_clause(entity, "read")
    if scope is not None:
        filters.append(scope)
    group = table.c[group_by]
    statement = (
        select(group, func.count(), *(func.sum(table.c[name]) for name in sum_fields))
        .where(*filters)
        .group_by(group)
    )
    compiled = entity.compiled.fields
    found: dict[Any, GroupTotals] = {}
    for row in conn.execute(statement):
        key = compiled[group_by].to_json(row[0])
        sums = {name: _number(compiled[name], row[2 + i]) for i, name in enumerate(sum_fields)}
        found[key] = GroupTotals(count=int(row[1]), sums=sums)
    return found


def _number(field: CompiledField, total: Any) -> Number:
    """A sum as the field's values are: an int, or a decimal at the field's scale."""
    storage = field.field_type.storage(field.definition.options)
    if storage.kind == "integer":
        return int(total or 0)
    step = Decimal(1).scaleb(-(storage.scale or 0))
    return Decimal(str(total or 0)).quantize(step, ROUND_HALF_UP)
