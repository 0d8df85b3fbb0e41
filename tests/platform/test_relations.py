"""Child tables through the records service on both databases: quote lines saved with the quote."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.platform import records
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.errors import Invalid
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.record_errors import RecordInRecycleBin, StaleVersion
from formloom.platform.record_query import list_records
from tests.platform.crm_entities import ENV, field, label, lookup, publish
from tests.principals import SYSTEM

QUOTE = {
    "name": "quote",
    "label": label("Quote", "报价单"),
    "title_field": "title",
    "fields": [
        field("title", required=True),
        field("lines", "child_table", options={"entity": "quote_line", "field": "quote"}),
        field(
            "total",
            "rollup",
            options={
                "relation": {"entity": "quote_line", "field": "quote"},
                "aggregate": "sum",
                "field": "amount",
            },
        ),
        field(
            "line_count",
            "rollup",
            options={"relation": {"entity": "quote_line", "field": "quote"}, "aggregate": "count"},
        ),
    ],
}

QUOTE_LINE = {
    "name": "quote_line",
    "label": label("Quote line", "报价明细"),
    "fields": [
        lookup("quote", "quote", "cascade", required=True),
        field("product", required=True),
        field("quantity", "integer", required=True, options={"min": 1}),
        field("price", "decimal", options={"precision": 12, "scale": 2}),
        field(
            "amount",
            "formula",
            options={"expression": "double(quantity) * price", "result": "decimal"},
        ),
    ],
}


@pytest.fixture
def sales(workspace: Workspace) -> Workspace:
    publish(workspace, QUOTE, QUOTE_LINE)
    return workspace


@pytest.fixture(autouse=True)
def _no_leftover_connections(workspace: Workspace) -> Iterator[None]:
    yield
    assert workspace.engine.pool.checkedout() == 0


def line(product: str, quantity: Any, price: Any = 10, **extra: Any) -> dict[str, Any]:
    return {"product": product, "quantity": quantity, "price": price, **extra}


def create_quote(ws: Workspace, *lines: dict[str, Any]) -> dict[str, Any]:
    payload = {"title": "Q1", "lines": list(lines)}
    return records.create_record(ws, env=ENV, entity="quote", payload=payload, principal=SYSTEM)


def patch(ws: Workspace, record: dict[str, Any], **values: Any) -> dict[str, Any]:
    payload = {"version": record["version"], **values}
    return records.update_record(
        ws, env=ENV, entity="quote", record_id=record["id"], payload=payload, principal=SYSTEM
    )


def get(ws: Workspace, entity: str, record_id: int) -> dict[str, Any]:
    return records.get_record(ws, env=ENV, entity=entity, record_id=record_id, principal=SYSTEM)


def stored(ws: Workspace, entity: str) -> list[dict[str, Any]]:
    with ws.begin(ENV, readonly=True) as conn:
        table = sa.Table(entity, sa.MetaData(), autoload_with=conn, schema=ws.env_schema(ENV))
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def products(record: dict[str, Any]) -> list[tuple[str, int]]:
    return [(row["product"], row["quantity"]) for row in record["lines"]]


def test_create_saves_the_lines_with_the_quote(sales: Workspace) -> None:
    # when
    quote = create_quote(sales, line("pen", 2, 3), line("ink", 1, 5.5))

    # then
    assert products(quote) == [("pen", 2), ("ink", 1)]
    assert [row["quote"] for row in quote["lines"]] == [quote["id"], quote["id"]]
    assert quote["total"] == 11.5
    assert quote["line_count"] == 2
    assert get(sales, "quote", quote["id"]) == quote
    assert "lines" not in stored(sales, "quote")[0]


def test_update_creates_changes_and_removes_lines_at_once(sales: Workspace) -> None:
    # given
    quote = create_quote(sales, line("pen", 2), line("ink", 1), line("pad", 4))
    pen, _ink, pad = quote["lines"]

    # when
    changed = patch(
        sales,
        quote,
        lines=[
            {"id": pad["id"], "version": pad["version"], "quantity": 5},
            {"id": pen["id"], "version": pen["version"]},
            line("cap", 1),
        ],
    )

    # then
    assert products(changed) == [("pen", 2), ("pad", 5), ("cap", 1)]
    assert changed["total"] == 80
    assert changed["line_count"] == 3
    deleted = [row["product"] for row in stored(sales, "quote_line") if row["deleted_at"]]
    assert deleted == ["ink"]


def test_a_patch_without_the_lines_keeps_them(sales: Workspace) -> None:
    # given
    quote = create_quote(sales, line("pen", 2))

    # when
    changed = patch(sales, quote, title="Q2")

    # then
    assert changed["title"] == "Q2"
    assert products(changed) == [("pen", 2)]


def test_an_empty_list_removes_every_line(sales: Workspace) -> None:
    # given
    quote = create_quote(sales, line("pen", 2), line("ink", 1))

    # when
    changed = patch(sales, quote, lines=[])

    # then
    assert changed["lines"] == []
    assert changed["total"] == 0
    assert changed["line_count"] == 0


def test_a_bad_line_writes_nothing_and_names_its_path(sales: Workspace) -> None:
    # when
    with pytest.raises(Invalid) as caught:
        create_quote(sales, line("pen", 2), line("ink", 1), line("pad", 0), {"quantity": "x"})

    # then
    assert sorted(i.path for i in caught.value.issues) == [
        "/lines/2/quantity",
        "/lines/3/product",
        "/lines/3/quantity",
    ]
    assert stored(sales, "quote") == []
    assert stored(sales, "quote_line") == []


def test_a_bad_line_in_an_update_leaves_quote_and_lines_as_they_were(sales: Workspace) -> None:
    # given
    quote = create_quote(sales, line("pen", 2), line("ink", 1))
    pen, ink = quote["lines"]

    # when
    with pytest.raises(Invalid) as caught:
        patch(
            sales,
            quote,
            title="Q2",
            lines=[{"id": pen["id"], "version": pen["version"], "quantity": 9}, line("x", -1)],
        )

    # then
    assert [i.path for i in caught.value.issues] == ["/lines/1/quantity"]
    assert get(sales, "quote", quote["id"]) == quote
    assert get(sales, "quote_line", ink["id"])["version"] == ink["version"]


def test_line_updates_need_their_current_version(sales: Workspace) -> None:
    # given
    quote = create_quote(sales, line("pen", 2))
    (pen,) = quote["lines"]

    # when
    with pytest.raises(StaleVersion) as caught:
        patch(sales, quote, lines=[{"id": pen["id"], "version": pen["version"] + 1}])

    # then
    assert [i.path for i in caught.value.issues] == ["/lines/0/version"]
    assert caught.value.details["current"] == pen


def test_ids_of_other_records_lines_are_refused(sales: Workspace) -> None:
    # given
    other = create_quote(sales, line("pen", 2))
    quote = create_quote(sales, line("ink", 1))

    # when
    with pytest.raises(Invalid) as caught:
        patch(sales, quote, lines=[{"id": other["lines"][0]["id"], "version": 1}, {"id": "x"}])

    # then
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/lines/0/id", "not_a_child"),
        ("/lines/1/id", "not_a_child"),
    ]


def test_deleting_the_quote_takes_its_lines_along(sales: Workspace) -> None:
    # given
    quote = create_quote(sales, line("pen", 2))
    (pen,) = quote["lines"]

    # when
    records.delete_record(sales, env=ENV, entity="quote", record_id=quote["id"], principal=SYSTEM)

    # then
    with pytest.raises(RecordInRecycleBin):
        get(sales, "quote_line", pen["id"])
    restored = records.restore_record(
        sales, env=ENV, entity="quote", record_id=quote["id"], principal=SYSTEM
    )
    assert products(get(sales, "quote", restored["id"])) == [("pen", 2)]


def test_lists_leave_the_lines_out(sales: Workspace) -> None:
    # given
    create_quote(sales, line("pen", 2))

    # when
    with sales.begin(ENV, readonly=True) as conn:
        entity = load_entity(conn, namespace=sales.cache_key, env=ENV, name="quote")
        page = list_records(conn, entity)

    # then
    assert [item["title"] for item in page.items] == ["Q1"]
    assert "lines" not in page.items[0]


def test_a_child_table_needs_a_cascading_lookup_back(workspace: Workspace) -> None:
    # given
    restricted = {
        **QUOTE_LINE,
        "fields": [lookup("quote", "quote"), *QUOTE_LINE["fields"][1:]],  # type: ignore[misc]
    }
    wrong_field = {
        **QUOTE,
        "fields": [
            field("title"),
            field("lines", "child_table", options={"entity": "quote_line", "field": "product"}),
        ],
    }
    unknown = {
        **QUOTE,
        "fields": [
            field("title"),
            field("lines", "child_table", options={"entity": "nothing", "field": "quote"}),
        ],
    }

    # when
    with pytest.raises(Invalid) as not_cascade:
        publish(workspace, QUOTE, restricted)
    with pytest.raises(Invalid) as not_lookup:
        publish(workspace, wrong_field, QUOTE_LINE)
    with pytest.raises(Invalid) as missing:
        publish(workspace, unknown)

    # then
    assert [(i.path, i.code) for i in not_cascade.value.issues] == [
        ("quote.json#/fields/1/options/field", "invalid_child_link"),
        ("quote_line.json#", "child_table_broken"),
    ]
    assert "cascade" in not_cascade.value.issues[0].message
    assert [(i.path, i.code) for i in not_lookup.value.issues] == [
        ("quote.json#/fields/1/options/field", "invalid_child_link"),
        ("quote_line.json#", "child_table_broken"),
    ]
    assert [(i.path, i.code) for i in missing.value.issues] == [
        ("quote.json#/fields/1/options/entity", "unknown_entity")
    ]


def test_a_child_table_can_be_added_and_removed_later(workspace: Workspace) -> None:
    # given
    plain = {**QUOTE, "fields": [field("title", required=True)]}
    publish(workspace, plain, QUOTE_LINE)

    # when
    publish(workspace, QUOTE)
    quote = create_quote(workspace, line("pen", 2))
    publish(workspace, plain)

    # then
    assert "lines" not in get(workspace, "quote", quote["id"])
    assert len(stored(workspace, "quote_line")) == 1


def test_the_child_entity_cannot_break_or_drop_its_link(sales: Workspace) -> None:
    # given
    restricted = {
        **QUOTE_LINE,
        "fields": [lookup("quote", "quote"), *QUOTE_LINE["fields"][1:]],  # type: ignore[misc]
    }

    # when
    with pytest.raises(Invalid) as broken:
        publish(sales, restricted)
    with pytest.raises(Invalid) as removed:
        MetaStore(sales).remove(ENV, "entity", "quote_line", PublishOptions())

    # then
    assert [(i.path, i.code) for i in broken.value.issues] == [
        ("quote_line.json#", "child_table_broken")
    ]
    assert "`quote.lines`" in broken.value.issues[0].message
    assert {i.code for i in removed.value.issues} == {"referenced"}
    assert any("child table `quote.lines`" in i.message for i in removed.value.issues)


# -- multi-lookups ------------------------------------------------------------------------------

TAG = {
    "name": "tag",
    "label": label("Tag", "标签"),
    "title_field": "name",
    "fields": [field("name")],
}
ARTICLE = {
    "name": "article",
    "label": label("Article", "文章"),
    "fields": [field("title"), field("tags", "multi_lookup", options={"entity": "tag"})],
}


@pytest.fixture
def blog(workspace: Workspace) -> Workspace:
    publish(workspace, TAG, ARTICLE)
    return workspace


def tags(ws: Workspace, *names: str) -> list[int]:
    return [
        records.create_record(ws, env=ENV, entity="tag", payload={"name": n}, principal=SYSTEM)[
            "id"
        ]
        for n in names
    ]


def links(ws: Workspace) -> list[tuple[int, int, int]]:
    """The junction rows of ``article.tags`` by position."""
    with ws.begin(ENV, readonly=True) as conn:
        schema = ws.env_schema(ENV)
        table = sa.Table("article__tags", sa.MetaData(), autoload_with=conn, schema=schema)
        query = sa.select(table.c.record_id, table.c.target_id, table.c.position)
        return [tuple(r) for r in conn.execute(query.order_by(table.c.position))]


def create_article(ws: Workspace, **values: Any) -> dict[str, Any]:
    return records.create_record(
        ws, env=ENV, entity="article", payload={"title": "A", **values}, principal=SYSTEM
    )


def patch_article(ws: Workspace, record: dict[str, Any], **values: Any) -> dict[str, Any]:
    payload = {"version": record["version"], **values}
    return records.update_record(
        ws, env=ENV, entity="article", record_id=record["id"], payload=payload, principal=SYSTEM
    )


def test_multi_lookups_keep_their_ids_in_order(blog: Workspace) -> None:
    # given
    a, b, c = tags(blog, "a", "b", "c")

    # when
    article = create_article(blog, tags=[c, a, c])

    # then
    assert article["tags"] == [c, a]
    assert get(blog, "article", article["id"])["tags"] == [c, a]
    assert links(blog) == [(article["id"], c, 0), (article["id"], a, 1)]
    assert b not in article["tags"]


def test_multi_lookups_add_remove_and_reorder(blog: Workspace) -> None:
    # given
    a, b, c = tags(blog, "a", "b", "c")
    article = create_article(blog, tags=[a, b])

    # when
    reordered = patch_article(blog, article, tags=[c, b])
    same = patch_article(blog, reordered, tags=[c, b])
    title_only = patch_article(blog, same, title="B")

    # then
    assert reordered["tags"] == [c, b]
    assert reordered["version"] == article["version"] + 1
    assert same["version"] == reordered["version"]
    assert title_only["tags"] == [c, b]
    entry = records.record_history(
        blog, env=ENV, entity="article", record_id=article["id"], principal=SYSTEM
    )
    assert entry["items"][1]["changes"] == {"tags": [[a, b], [c, b]]}


def test_unknown_and_deleted_ids_name_their_position(blog: Workspace) -> None:
    # given
    a, b = tags(blog, "a", "b")
    records.delete_record(blog, env=ENV, entity="tag", record_id=b, principal=SYSTEM)

    # when
    with pytest.raises(Invalid) as caught:
        create_article(blog, tags=[a, 999, b])

    # then
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/tags/1", "unknown_record"),
        ("/tags/2", "deleted_record"),
    ]
    assert stored(blog, "article") == []


def test_deleted_targets_are_hidden_and_purges_remove_links(blog: Workspace) -> None:
    # given
    a, b = tags(blog, "a", "b")
    article = create_article(blog, tags=[a, b])

    # when
    records.delete_record(blog, env=ENV, entity="tag", record_id=a, principal=SYSTEM)
    hidden = get(blog, "article", article["id"])
    records.purge_record(blog, env=ENV, entity="tag", record_id=a, principal=SYSTEM)

    # then
    assert hidden["tags"] == [b]
    assert links(blog) == [(article["id"], b, 1)]


def test_a_multi_lookup_needs_an_existing_target_and_blocks_its_removal(blog: Workspace) -> None:
    # given
    broken = {
        **ARTICLE,
        "fields": [field("tags", "multi_lookup", options={"entity": "nothing"})],
    }

    # when
    with pytest.raises(Invalid) as unknown:
        publish(blog, broken)
    with pytest.raises(Invalid) as removed:
        MetaStore(blog).remove(ENV, "entity", "tag", PublishOptions())

    # then
    assert [(i.path, i.code) for i in unknown.value.issues] == [
        ("article.json#/fields/0/options/entity", "unknown_entity")
    ]
    assert [i.code for i in removed.value.issues] == ["referenced"]


def test_removing_a_multi_lookup_keeps_its_links_until_purged(blog: Workspace) -> None:
    # given
    (a,) = tags(blog, "a")
    article = create_article(blog, tags=[a])
    plain = {**ARTICLE, "fields": [field("title")]}

    # when
    publish(blog, plain)
    publish(blog, ARTICLE)
    restored = get(blog, "article", article["id"])
    MetaStore(blog).apply(
        ENV, [SourceDocument("entity", plain, "article.json")], PublishOptions(purge=True)
    )

    # then
    assert restored["tags"] == [a]
    with blog.begin(ENV, readonly=True) as conn:
        assert not sa.inspect(conn).has_table("article__tags", schema=blog.env_schema(ENV))
