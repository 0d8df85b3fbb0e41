"""Rules for API names that become SQL identifiers (entities, fields, indexes, environments)."""

from __future__ import annotations

import re

API_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
ENV_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
_API_NAME = re.compile(API_NAME_PATTERN)
_ENV_NAME = re.compile(ENV_NAME_PATTERN)

SYSTEM_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "owner_id",
    "version",
    "deleted_at",
)

#: Prefix of the platform's own tables inside an environment; entity names may not use it.
SYSTEM_TABLE_PREFIX = "fl_"

# SQL reserved words of PostgreSQL, SQLite and SQL:2016 that a user could plausibly type.
SQL_RESERVED = frozenset(
    """
    abort all alter analyse analyze and any array as asc asymmetric attach authorization
    autoincrement before begin between binary both by cascade case cast check collate column
    commit concurrently conflict constraint create cross current current_catalog current_date
    current_role current_schema current_time current_timestamp current_user database default
    deferrable deferred delete desc detach distinct do drop each else end escape except
    exclusive exists explain fetch filter for foreign freeze from full glob grant group having
    if ilike immediate in index indexed initially inner insert instead intersect into is isnull
    join key lateral leading left like limit localtime localtimestamp match natural no not
    notnull null of offset on only or order outer over overlaps partition placing plan pragma
    primary query raise recursive references regexp reindex release rename replace restrict
    returning right rollback row rows savepoint select session_user set similar some symmetric
    system_user table tablesample temp temporary then to trailing transaction trigger union
    unique update user using vacuum values variadic verbose view virtual when where window with
    without
    """.split()
)


def api_name_problem(name: str, *, what: str) -> str | None:
    """Return why ``name`` cannot be used as an API name, or None when it can."""
    if not _API_NAME.match(name):
        return (
            f"{what} `{name}` is not a valid API name: use 1-63 characters, lowercase "
            "letters, digits and underscores, starting with a letter (e.g. `close_date`)"
        )
    if name in SQL_RESERVED:
        return f"{what} `{name}` is an SQL reserved word; choose another name (e.g. `{name}_value`)"
    return None


def env_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name an environment, or None when it can."""
    if not _ENV_NAME.match(name):
        return (
            f"environment name `{name}` is not a valid slug: use 1-31 characters, lowercase "
            "letters, digits and underscores, starting with a letter (e.g. `sandbox_1`)"
        )
    return None
