"""The metadata store: drafts, publishing, versions, rollback and environments (both databases)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment
from formloom.platform.errors import Conflict, Invalid, NotFound
from formloom.platform.metastore import (
    BatchInvalid,
    MetaStore,
    PublishOptions,
    PublishResult,
    SourceDocument,
)
from formloom.platform.tables import environment

ENV = "production"
SANDBOX = "sandbox"
LABEL = {"zh": "名称", "en": "Name"}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def entity(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "fields": list(fields), **extra}


@pytest.fixture
def store(workspace: Workspace) -> MetaStore:
    return MetaStore(workspace)


def publish(
    store: MetaStore, body: dict[str, Any], env: str = ENV, **options: Any
) -> PublishResult:
    store.save_draft(env, "entity", body["name"], body)
    return store.publish(env, "entity", body["name"], PublishOptions(**options))


def codes(error: Invalid) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in error.issues]


def columns(workspace: Workspace, table: str, env: str = ENV) -> list[str] | None:
    """The table's column names, or None when the environment has no such table."""
    schema = workspace.env_schema(env)
    with workspace.begin(env, readonly=True) as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table(table, schema=schema):
            return None
        return [c["name"] for c in inspector.get_columns(table, schema=schema)]


def insert(workspace: Workspace, table: str, **values: Any) -> None:
    schema = workspace.env_schema(ENV)
    names = ", ".join(f'"{n}"' for n in ["created_at", "updated_at", *values])
    params = ", ".join(["CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP", *(f":{n}" for n in values)])
    with workspace.begin(ENV) as conn:
        conn.execute(
            sa.text(f'INSERT INTO "{schema}"."{table}" ({names}) VALUES ({params})'), values
        )


def column_values(workspace: Workspace, table: str, column: str) -> list[Any]:
    schema = workspace.env_schema(ENV)
    with workspace.begin(ENV, readonly=True) as conn:
        sql = f'SELECT "{column}" FROM "{schema}"."{table}" ORDER BY id'
        return list(conn.execute(sa.text(sql)).scalars())


# -- 10. drafts -------------------------------------------------------------------------------


def test_an_invalid_draft_is_saved_with_its_issues(store: MetaStore) -> None:
    # given
    body = entity("deal", field("select"), field("amount", "numbr"))

    # when
    saved = store.save_draft(ENV, "entity", "deal", body)

    # then
    assert [(i["path"], i["code"]) for i in saved["issues"]] == [
        ("/fields/0/name", "reserved_name"),
        ("/fields/1/type", "unknown_type"),
    ]
    assert all(i["message"] for i in saved["issues"])
    state = store.get(ENV, "entity", "deal")
    assert (state["status"], state["draft"], state["published"]) == ("draft", body, None)
    assert store.list_documents(ENV)[0]["has_draft"] is True


def test_a_valid_draft_has_no_issues(store: MetaStore) -> None:
    saved = store.save_draft(ENV, "entity", "deal", entity("deal", field("title")))

    assert saved["issues"] == []


def test_publishing_an_invalid_draft_raises_invalid_with_every_issue(
    store: MetaStore, workspace: Workspace
) -> None:
    store.save_draft(
        ENV,
        "entity",
        "deal",
        entity("deal", field("id"), field("code"), field("code"), field("x", label={"en": "x"})),
    )

    with pytest.raises(Invalid) as exc:
        store.publish(ENV, "entity", "deal", PublishOptions())

    assert sorted(codes(exc.value)) == [
        ("/fields/0/name", "system_column"),
        ("/fields/1/name", "duplicate_field"),
        ("/fields/2/name", "duplicate_field"),
        ("/fields/3/label", "required"),
    ]
    assert store.get(ENV, "entity", "deal")["status"] == "draft"
    assert columns(workspace, "deal") is None


def test_publishing_without_a_draft_is_a_conflict(store: MetaStore) -> None:
    with pytest.raises(Conflict) as never_saved:
        store.publish(ENV, "entity", "deal", PublishOptions())
    publish(store, entity("deal", field("title")))
    with pytest.raises(Conflict) as already_published:
        store.publish(ENV, "entity", "deal", PublishOptions())

    assert "no draft to publish" in never_saved.value.message
    assert "save one first" in already_published.value.message


def test_a_draft_over_a_published_document_changes_nothing_until_published(
    store: MetaStore, workspace: Workspace
) -> None:
    first = publish(store, entity("deal", field("title")))

    store.save_draft(ENV, "entity", "deal", entity("deal", field("title"), field("amount")))

    state = store.get(ENV, "entity", "deal")
    assert (state["status"], state["published_version"]) == ("published", first.version)
    assert [f["name"] for f in state["published"]["fields"]] == ["title"]
    assert [f["name"] for f in state["draft"]["fields"]] == ["title", "amount"]
    assert "amount" not in (columns(workspace, "deal") or [])


def test_a_body_named_differently_from_its_address_is_refused(store: MetaStore) -> None:
    with pytest.raises(Invalid) as exc:
        store.save_draft(ENV, "entity", "deal", entity("lead", field("title")))

    assert codes(exc.value) == [("/name", "name_mismatch")]
    with pytest.raises(NotFound):
        store.get(ENV, "entity", "deal")


def test_an_unknown_kind_is_not_found(store: MetaStore) -> None:
    with pytest.raises(NotFound) as exc:
        store.save_draft(ENV, "entiti", "deal", entity("deal"))

    assert "did you mean `entity`?" in exc.value.message


# -- 5. refused documents ---------------------------------------------------------------------


def test_a_publish_lists_every_problem_with_code_path_and_message(store: MetaStore) -> None:
    # given
    body = entity(
        "fl_deal",
        field("select"),
        field("Bad Name"),
        field("version"),
        field("code"),
        field("code"),
        field("amount", "txt"),
        field("company", "lookup", options={"entity": "company"}),
        label={"zh": "交易", "en": "x" * 101},
    )
    store.save_draft(ENV, "entity", "fl_deal", body)

    # when
    with pytest.raises(Invalid) as exc:
        store.publish(ENV, "entity", "fl_deal", PublishOptions())

    # then
    assert sorted(codes(exc.value)) == [
        ("/fields/0/name", "reserved_name"),
        ("/fields/1/name", "pattern"),
        ("/fields/2/name", "system_column"),
        ("/fields/3/name", "duplicate_field"),
        ("/fields/4/name", "duplicate_field"),
        ("/fields/5/type", "unknown_type"),
        ("/fields/6/options/entity", "unknown_entity"),
        ("/label/en", "maxLength"),
        ("/name", "reserved_name"),
    ]
    messages = {(i.path, i.code): i.message for i in exc.value.issues}
    assert "did you mean `text`?" in messages[("/fields/5/type", "unknown_type")]
    assert "`company`" in messages[("/fields/6/options/entity", "unknown_entity")]
    assert "at most 100" in messages[("/label/en", "maxLength")]


def test_more_than_500_fields_is_refused(store: MetaStore) -> None:
    store.save_draft(ENV, "entity", "wide", entity("wide", *(field(f"f{i}") for i in range(501))))

    with pytest.raises(Invalid) as exc:
        store.publish(ENV, "entity", "wide", PublishOptions())

    assert codes(exc.value) == [("/fields", "maxItems")]
    assert "has 501 items; at most 500 allowed" in exc.value.issues[0].message


def test_a_batch_reports_the_problems_of_every_document_by_source(
    store: MetaStore, workspace: Workspace
) -> None:
    # given: documents that are no entity at all, beside entities with problems
    documents = [
        SourceDocument("entity", entity("company", field("title")), "company.json"),
        SourceDocument("entity", entity("contact", field("id")), "contact.json"),
        SourceDocument(
            "entity",
            entity("deal", field("customer", "lookup", options={"entity": "custmer"})),
            "deal.json",
        ),
        SourceDocument("widget", {"name": "w"}, "widget.json"),
        SourceDocument("entity", {"label": LABEL}, "nameless.json"),
    ]

    # when
    with pytest.raises(BatchInvalid) as exc:
        store.apply(ENV, documents, PublishOptions())

    # then
    found = {
        source: [(i.path, i.code) for i in issues] for source, issues in exc.value.failures.items()
    }
    assert found == {
        "widget.json": [("", "unknown_kind")],
        "nameless.json": [("/name", "required")],
        "contact.json": [("/fields/0/name", "system_column")],
        "deal.json": [("/fields/0/options/entity", "unknown_entity")],
    }
    assert "contact.json#/fields/0/name" in [i.path for i in exc.value.issues]
    assert store.list_documents(ENV) == []
    assert columns(workspace, "company") is None


def test_a_batch_may_not_hold_the_same_document_twice(
    store: MetaStore, workspace: Workspace
) -> None:
    documents = [
        SourceDocument("entity", entity("deal", field("title")), "deal.json"),
        SourceDocument("entity", entity("deal", field("code")), "deal-copy.json"),
    ]

    with pytest.raises(BatchInvalid) as exc:
        store.apply(ENV, documents, PublishOptions())

    assert codes(exc.value) == [("deal-copy.json#/name", "duplicate_document")]
    assert "also in deal.json" in exc.value.issues[0].message
    assert columns(workspace, "deal") is None


# -- 7. versions, history and rollback --------------------------------------------------------


def test_every_publish_adds_a_version_with_its_body(store: MetaStore) -> None:
    publish(store, entity("deal", field("title")), comment="first", actor="ann")
    publish(store, entity("deal", field("title"), field("amount", "integer")))

    versions = store.versions(ENV, "entity", "deal")

    assert [(v["version"], v["action"]) for v in versions] == [(1, "publish"), (2, "publish")]
    assert (versions[0]["comment"], versions[0]["published_by"]) == ("first", "ann")
    assert [f["name"] for f in store.version(ENV, "entity", "deal", 1)["fields"]] == ["title"]
    assert [f["name"] for f in store.version(ENV, "entity", "deal", 2)["fields"]] == [
        "title",
        "amount",
    ]


def test_publishing_an_identical_body_is_a_no_op(store: MetaStore) -> None:
    body = entity("deal", field("title"), field("code", unique=True))
    first = publish(store, body)

    again = publish(store, body)

    assert (again.changed, again.version) == (False, first.version)
    assert len(store.versions(ENV, "entity", "deal")) == 1
    assert store.get(ENV, "entity", "deal")["draft"] is None


def test_republishing_the_published_body_with_its_ids_is_a_no_op(store: MetaStore) -> None:
    publish(store, entity("deal", field("title")))
    current = store.get(ENV, "entity", "deal")["published"]

    again = publish(store, current)

    assert again.changed is False


def test_rollback_publishes_an_old_body_as_a_new_version_and_the_table_follows(
    store: MetaStore, workspace: Workspace
) -> None:
    # given: v1 has a title; v2 adds an amount that gets data
    publish(store, entity("deal", field("title")))
    publish(store, entity("deal", field("title"), field("amount", "integer")))
    insert(workspace, "deal", title="First", amount=7)

    # when
    result = store.rollback(ENV, "entity", "deal", 1, PublishOptions())

    # then
    assert (result.version, result.changed) == (3, True)
    versions = store.versions(ENV, "entity", "deal")
    assert (versions[-1]["action"], versions[-1]["comment"]) == (
        "rollback",
        "rollback to version 1",
    )
    body = store.get(ENV, "entity", "deal")["published"]
    assert body["fields"] == store.version(ENV, "entity", "deal", 1)["fields"]
    assert [(r["field"]["name"], r["removed_in_version"]) for r in body["retired_fields"]] == [
        ("amount", 3)
    ]
    assert "amount" in (columns(workspace, "deal") or [])
    assert column_values(workspace, "deal", "amount") == [7]


def test_rolling_forward_again_restores_the_retired_data(
    store: MetaStore, workspace: Workspace
) -> None:
    publish(store, entity("deal", field("title")))
    publish(store, entity("deal", field("title"), field("amount", "integer")))
    insert(workspace, "deal", title="First", amount=7)
    store.rollback(ENV, "entity", "deal", 1, PublishOptions())

    result = store.rollback(ENV, "entity", "deal", 2, PublishOptions(comment="undo"))

    assert result.version == 4
    assert store.versions(ENV, "entity", "deal")[-1]["comment"] == "undo"
    body = store.get(ENV, "entity", "deal")["published"]
    assert [f["name"] for f in body["fields"]] == ["title", "amount"]
    assert body["retired_fields"] == []
    assert column_values(workspace, "deal", "amount") == [7]


def test_rollback_to_the_current_body_changes_nothing(store: MetaStore) -> None:
    publish(store, entity("deal", field("title")))

    result = store.rollback(ENV, "entity", "deal", 1, PublishOptions())

    assert (result.version, result.changed) == (1, False)
    assert len(store.versions(ENV, "entity", "deal")) == 1


def test_rollback_to_an_unknown_version_is_not_found(store: MetaStore) -> None:
    publish(store, entity("deal", field("title")))

    with pytest.raises(NotFound) as exc:
        store.rollback(ENV, "entity", "deal", 9, PublishOptions())

    assert "no version 9" in exc.value.message


# -- 9. environments --------------------------------------------------------------------------


def test_environments_do_not_see_each_other(store: MetaStore, workspace: Workspace) -> None:
    # given
    create_environment(workspace, SANDBOX)

    # when: the same entity name, different fields, in each environment
    publish(store, entity("deal", field("title")), env=ENV)
    publish(store, entity("deal", field("code"), field("amount", "integer")), env=SANDBOX)
    publish(store, entity("lead", field("source")), env=SANDBOX)

    # then
    assert [f["name"] for f in store.get(ENV, "entity", "deal")["published"]["fields"]] == ["title"]
    assert [d["name"] for d in store.list_documents(ENV)] == ["deal"]
    assert [d["name"] for d in store.list_documents(SANDBOX)] == ["deal", "lead"]
    assert columns(workspace, "deal", ENV)[-1:] == ["title"]  # type: ignore[index]
    assert columns(workspace, "deal", SANDBOX)[-2:] == ["code", "amount"]  # type: ignore[index]
    assert columns(workspace, "lead", ENV) is None
    with pytest.raises(NotFound):
        store.get(ENV, "entity", "lead")


def test_a_sandbox_publish_leaves_production_tables_alone(
    store: MetaStore, workspace: Workspace
) -> None:
    publish(store, entity("deal", field("title")), env=ENV)
    create_environment(workspace, SANDBOX)

    publish(store, entity("deal", field("title")), env=SANDBOX)
    store.remove(SANDBOX, "entity", "deal", PublishOptions(purge=True))

    assert columns(workspace, "deal", SANDBOX) is None
    assert columns(workspace, "deal", ENV) is not None
    assert store.get(ENV, "entity", "deal")["status"] == "published"


def test_a_lookup_cannot_reach_an_entity_of_another_environment(
    store: MetaStore, workspace: Workspace
) -> None:
    publish(store, entity("company", field("title")), env=ENV)
    create_environment(workspace, SANDBOX)

    with pytest.raises(Invalid) as exc:
        publish(
            store,
            entity("contact", field("company", "lookup", options={"entity": "company"})),
            env=SANDBOX,
        )

    assert codes(exc.value) == [("/fields/0/options/entity", "unknown_entity")]


def test_an_unknown_environment_is_not_found(store: MetaStore) -> None:
    with pytest.raises(NotFound) as exc:
        store.save_draft("nowhere", "entity", "deal", entity("deal"))

    assert "environment `nowhere` does not exist" in exc.value.message


def test_publishing_into_an_unknown_environment_is_not_found(store: MetaStore) -> None:
    with pytest.raises(NotFound) as exc:
        store.apply(
            "nowhere", [SourceDocument("entity", entity("deal"), "deal.json")], PublishOptions()
        )

    assert "environment `nowhere` does not exist" in exc.value.message


def test_an_environment_left_without_its_registration_is_not_published_into(
    store: MetaStore, workspace: Workspace
) -> None:
    """An environment's SQLite file or PostgreSQL schema may outlive its registration (a
    crash while creating or dropping it): nothing is published into it."""
    # given: the sandbox's file or schema exists, its registry row does not
    create_environment(workspace, SANDBOX)
    publish(store, entity("deal", field("title")), env=SANDBOX)
    with workspace.begin() as conn:
        conn.execute(sa.delete(environment).where(environment.c.name == SANDBOX))

    # when
    with pytest.raises(NotFound) as exc:
        store.apply(
            SANDBOX, [SourceDocument("entity", entity("lead"), "lead.json")], PublishOptions()
        )

    # then
    assert f"environment `{SANDBOX}` does not exist" in exc.value.message
    assert columns(workspace, "lead", SANDBOX) is None
