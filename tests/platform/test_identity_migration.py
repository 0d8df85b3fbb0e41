"""The identity migration: existing workspaces get the tables, and they match ``tables.py``."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment, initialise_workspace
from formloom.platform.migrate import alembic_config
from formloom.platform.tables import platform_metadata
from formloom.platform.users import count_users
from tests.identity import create_user

IDENTITY_TABLES = {
    "fl_user",
    "fl_team",
    "fl_team_member",
    "fl_user_role",
    "fl_credential",
    "fl_login_attempt",
    "fl_security_audit",
}


def test_an_existing_workspace_is_migrated(settings):
    # given: a workspace made before identity existed (revision 0001) with data in it
    workspace = Workspace(settings)
    try:
        workspace.ensure_platform_namespace()
        config = alembic_config(workspace)
        with workspace.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
        create_environment(workspace, "legacy")
        assert not IDENTITY_TABLES & _tables(workspace)

        # when
        initialise_workspace(workspace)

        # then
        assert _tables(workspace) >= IDENTITY_TABLES
        with workspace.begin(readonly=True) as conn:
            version = conn.execute(
                text(f"SELECT version_num FROM {_qualified(workspace, 'alembic_version')}")
            ).scalar()
        assert version == "0002"
        create_user(workspace, "sam", roles={"legacy": ["designer"]})
        assert count_users(workspace) == 1
        initialise_workspace(workspace)  # again: nothing to do
    finally:
        workspace.dispose()


def test_the_migrated_tables_match_the_table_definitions(workspace):
    inspector_schema = workspace.platform_schema
    with workspace.engine.connect() as conn:
        inspector = inspect(conn)
        for table in platform_metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name, inspector_schema)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (
                    table.name,
                    column.name,
                )
            primary = inspector.get_pk_constraint(table.name, inspector_schema)
            assert primary["constrained_columns"] == [c.name for c in table.primary_key]
            indexes = {
                i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table.name, inspector_schema)
                if i["name"] and not i["name"].startswith("sqlite_autoindex")
            }
            declared = {
                i.name: (tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes
            }
            assert {k: v for k, v in indexes.items() if k in declared} == declared
            assert set(declared) <= set(indexes), table.name
            uniques = {
                tuple(u["column_names"])
                for u in inspector.get_unique_constraints(table.name, inspector_schema)
            } | {cols for cols, unique in indexes.values() if unique}
            for column in table.columns:
                if column.unique:
                    assert (column.name,) in uniques, (table.name, column.name)
            foreign = {
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table.name, inspector_schema)
            }
            assert foreign == {
                ((fk.parent.name,), fk.column.table.name) for fk in table.foreign_keys
            }, table.name


def _tables(workspace: Workspace) -> set[str]:
    with workspace.engine.connect() as conn:
        return set(inspect(conn).get_table_names(workspace.platform_schema))


def _qualified(workspace: Workspace, name: str) -> str:
    schema = workspace.platform_schema
    return f'"{schema}".{name}' if schema else name
