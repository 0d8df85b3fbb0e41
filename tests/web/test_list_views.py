"""The list page's filters, saved views, bulk changes, exports and board link (both databases).

Builds on the staff app's test CRM (:mod:`tests.web.world`) with a second sales rep,
``rep2``, so that views and records of one rep can be checked against another.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from formloom.engine.conditions import condition_fields
from formloom.engine.entities import EntityDoc
from formloom.engine.records.compiled import compile_entity
from formloom.platform import records, saved_views
from formloom.platform.access import AccessDenied
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.environments import initialise_workspace
from formloom.platform.errors import Forbidden, Invalid, NotFound
from formloom.platform.principal import Principal
from formloom.platform.settings import Settings
from formloom.platform.tables import saved_view
from formloom.platform.web.list_filters import filter_from_rows, row_value, rows_of
from formloom.platform.web.texts_lists import EN, ZH
from tests.identity import create_user, principal_of
from tests.platform.crm_entities import publish as publish_entities
from tests.platform.test_list_filters_more import ARTICLE, TAG
from tests.web.world import DEAL, ENV, csrf_of, post_form, publish_world, sign_in

DEALS = f"/app/{ENV}/deal"


@dataclass
class World:
    client: TestClient
    workspace: Workspace
    ids: dict[str, int]

    def principal(self, login: str) -> Principal:
        return principal_of(self.workspace, self.ids[login])

    def client_of(self, login: str) -> tuple[TestClient, str]:
        """Another browser, signed in as ``login``, with its CSRF token."""
        other = TestClient(self.client.app)
        return other, sign_in(other, login)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    app = build_app(settings, run_worker=False)
    workspace = app.state.workspace
    ids = publish_world(workspace)
    ids["rep2"] = create_user(workspace, "rep2", roles={ENV: ["sales_rep"]})
    with TestClient(app) as client:
        yield World(client, workspace, ids)


def add_deal(world: World, owner: str, **fields: Any) -> int:
    created = records.create_record(
        world.workspace,
        env=ENV,
        entity="deal",
        payload=fields,
        principal=world.principal(owner),
    )
    return int(created["id"])


def deals(world: World, *specs: tuple[str, int, str]) -> dict[str, int]:
    """Deals owned by the administrator: ids by title."""
    return {
        title: add_deal(world, "boss", title=title, amount=amount, stage=stage)
        for title, amount, stage in specs
    }


def titles_in(html: str) -> set[str]:
    """The titles in the list's first column."""
    return set(re.findall(r'/deal/\d+">([^<#][^<]*)</a></td>', html))


def link_after(html: str, marker: str) -> str:
    href = html.split(marker)[0].rsplit('href="', 1)[1].split('"')[0]
    return href.replace("&amp;", "&")


SAMPLE = (("Small", 10, "new"), ("Medium", 50, "won"), ("Large", 100, "won"), ("Lost", 80, "lost"))


# -- the filter builder (pure functions) ---------------------------------------------------------


def test_builder_rows_become_the_structured_filter_and_back() -> None:
    # given
    compiled = _deal_fields()

    # when
    built = filter_from_rows(
        ["amount", "", "stage", "close", "notes"],
        ["between", "eq", "in", "is_not_empty", "contains"],
        ["10,", "ignored", "won, lost", "", "acme"],
        join="or",
        fields=compiled,
    )

    # then
    assert built == {
        "or": [
            {"field": "amount", "op": "between", "value": ["10", None]},
            {"field": "stage", "op": "in", "value": ["won", "lost"]},
            {"field": "close", "op": "is_empty", "value": False},
            {"field": "notes", "op": "contains", "value": "acme"},
        ]
    }
    join, rows = rows_of(built) or ("", [])
    assert join == "or"
    assert [(r.field, r.op, r.value) for r in rows] == [
        ("amount", "between", "10,"),
        ("stage", "in", "won,lost"),
        ("close", "is_not_empty", ""),
        ("notes", "contains", "acme"),
    ]


def test_row_values_know_relative_dates_and_yes_no() -> None:
    created_at = condition_fields(_compiled())["created_at"]

    assert row_value("eq", "last_n_days:7", created_at) == {"relative": "last_n_days", "n": 7}
    assert row_value("ge", "this_month", created_at) == {"relative": "this_month"}
    assert row_value("eq", "2026-01-01", created_at) == "2026-01-01"


def test_a_filter_with_nested_groups_is_not_shown_as_rows() -> None:
    nested = {"and": [{"or": [{"field": "amount", "op": "gt", "value": 1}]}]}

    assert rows_of(nested) is None
    assert rows_of({"field": "amount", "op": "gt", "value": 1}) is not None


def _compiled() -> Any:
    return compile_entity(EntityDoc.model_validate(DEAL))


def _deal_fields() -> Any:
    return condition_fields(_compiled())


# -- filters on the page -------------------------------------------------------------------------


def test_builder_rows_filter_the_list_and_paging_sorting_keep_the_filter(world: World) -> None:
    deals(world, *SAMPLE)
    sign_in(world.client, "boss")

    page = world.client.get(
        DEALS,
        params=[
            ("f_join", "and"),
            ("f_field", "amount"),
            ("f_op", "ge"),
            ("f_value", "50"),
            ("f_field", "stage"),
            ("f_op", "eq"),
            ("f_value", "won"),
            ("f_field", ""),
            ("f_op", "eq"),
            ("f_value", ""),
        ],
    )

    assert page.status_code == 200, page.text
    assert titles_in(page.text) == {"Medium", "Large"}
    sort_link = link_after(page.text, '" title="Sort by Amount"')
    assert "filter=" in sort_link
    sorted_page = world.client.get(sort_link)
    assert titles_in(sorted_page.text) == {"Medium", "Large"}
    assert sorted_page.text.index(">Medium<") < sorted_page.text.index(">Large<")
    assert 'value="50"' in sorted_page.text and "2 condition(s) applied" in sorted_page.text


def test_a_filter_in_the_address_with_or(world: World) -> None:
    deals(world, *SAMPLE)
    sign_in(world.client, "boss")
    where = {
        "or": [
            {"field": "stage", "op": "eq", "value": "lost"},
            {"field": "amount", "op": "lt", "value": 20},
        ]
    }

    page = world.client.get(DEALS, params={"filter": json.dumps(where)})

    assert titles_in(page.text) == {"Small", "Lost"}


def test_paging_keeps_the_filter(world: World) -> None:
    for n in range(30):
        add_deal(world, "boss", title=f"Deal {n:02d}", amount=n, stage="won" if n % 2 else "new")
    sign_in(world.client, "boss")
    where = json.dumps({"and": [{"field": "amount", "op": "ge", "value": 2}]})

    first = world.client.get(DEALS, params={"filter": where, "sort": "amount"})
    second = world.client.get(link_after(first.text, 'rel="next"'))

    assert "Deal 26" in first.text and "Deal 00" not in first.text
    assert titles_in(second.text) == {"Deal 27", "Deal 28", "Deal 29"}


def test_a_bad_filter_is_explained_on_the_page_in_english_and_chinese(world: World) -> None:
    sign_in(world.client, "boss")
    bad = [("f_field", "amount"), ("f_op", "contains"), ("f_value", "x")]

    english = world.client.get(DEALS, params=bad)
    world.client.cookies.set("formloom_lang", "zh")
    chinese = world.client.get(DEALS, params=bad)
    broken_json = world.client.get(DEALS, params={"filter": "{nope"})

    assert english.status_code == 422
    assert "The filter could not be applied" in english.text
    assert "Condition 1 (Amount): this condition does not apply" in english.text
    assert chinese.status_code == 422
    assert "筛选条件无法应用" in chinese.text and "条件 1（金额）" in chinese.text
    assert broken_json.status_code == 422 and "不是有效的 JSON" in broken_json.text


def test_a_value_that_does_not_fit_the_field_is_reported(world: World) -> None:
    sign_in(world.client, "boss")

    page = world.client.get(
        DEALS, params=[("f_field", "amount"), ("f_op", "gt"), ("f_value", "lots")]
    )

    assert page.status_code == 422
    assert "Condition 1 (Amount)" in page.text
    assert 'value="lots"' in page.text


def test_hidden_fields_are_neither_offered_nor_accepted(world: World) -> None:
    sign_in(world.client, "rep")

    page = world.client.get(DEALS)
    refused = world.client.get(
        DEALS, params=[("f_field", "margin"), ("f_op", "gt"), ("f_value", "1")]
    )

    assert 'value="margin"' not in page.text
    assert 'value="amount" data-ops="eq ne gt ge lt le between in not_in' in page.text
    assert refused.status_code == 422 and "Margin" not in refused.text


# -- saved views: the service ----------------------------------------------------------------------


def _definition(**changes: Any) -> saved_views.ViewDefinition:
    base: dict[str, Any] = {
        "filter": {"and": [{"field": "stage", "op": "eq", "value": "won"}]},
        "sort": ["-amount"],
    }
    return saved_views.ViewDefinition(**(base | changes))


def _save(world: World, login: str, name: str, *, shared: bool = False) -> saved_views.SavedView:
    return saved_views.save_view(
        world.workspace,
        env=ENV,
        entity="deal",
        name=name,
        definition=_definition(),
        shared=shared,
        principal=world.principal(login),
    )


def _views(world: World, login: str) -> list[str]:
    found = saved_views.list_views(
        world.workspace, env=ENV, entity="deal", principal=world.principal(login)
    )
    return [view.name for view in found]


def test_a_private_view_is_its_owners_only(world: World) -> None:
    mine = _save(world, "rep", "My won deals")

    assert _views(world, "rep") == ["My won deals"]
    assert _views(world, "rep2") == [] and _views(world, "boss") == []
    for login in ("rep2", "boss"):
        with pytest.raises(NotFound) as refused:
            saved_views.delete_view(
                world.workspace,
                env=ENV,
                entity="deal",
                view_id=mine.id,
                principal=world.principal(login),
            )
        assert "another user's private view" in refused.value.message
    assert _views(world, "rep") == ["My won deals"]


def test_a_shared_view_is_everyones_but_only_its_owner_or_an_admin_changes_it(
    world: World,
) -> None:
    shared = _save(world, "rep", "Team pipeline", shared=True)
    kept = _save(world, "rep", "Kept", shared=True)

    assert _views(world, "rep2") == ["Kept", "Team pipeline"]
    with pytest.raises(Forbidden) as refused:
        saved_views.delete_view(
            world.workspace,
            env=ENV,
            entity="deal",
            view_id=shared.id,
            principal=world.principal("rep2"),
            lang="zh",
        )
    with pytest.raises(Forbidden):
        saved_views.update_view(
            world.workspace,
            env=ENV,
            entity="deal",
            view_id=shared.id,
            principal=world.principal("rep2"),
            name="Mine now",
        )
    assert "只有其所有者或管理员" in refused.value.message
    renamed = saved_views.update_view(
        world.workspace,
        env=ENV,
        entity="deal",
        view_id=kept.id,
        principal=world.principal("boss"),
        name="Kept by boss",
    )
    saved_views.delete_view(
        world.workspace,
        env=ENV,
        entity="deal",
        view_id=shared.id,
        principal=world.principal("boss"),
    )
    assert renamed.name == "Kept by boss" and renamed.owner_id == world.ids["rep"]
    assert _views(world, "rep2") == ["Kept by boss"]


def test_views_need_read_permission_on_the_entity(world: World) -> None:
    _save(world, "rep", "Shared", shared=True)

    with pytest.raises(AccessDenied):
        _views(world, "outsider")


def test_a_view_never_holds_an_invalid_filter_sort_or_hidden_field(world: World) -> None:
    bad = [
        _definition(filter={"field": "amount", "op": "contains", "value": "x"}),
        _definition(filter={"field": "nope", "op": "eq", "value": 1}),
        _definition(sort=["-nope"]),
        _definition(filter={"field": "margin", "op": "gt", "value": 1}),
        _definition(filter=["not", "a", "condition"]),
    ]

    for definition in bad:
        with pytest.raises(Invalid) as refused:
            saved_views.save_view(
                world.workspace,
                env=ENV,
                entity="deal",
                name="Bad",
                definition=definition,
                principal=world.principal("rep"),
            )
        assert refused.value.issues and refused.value.issues[0].path.startswith("/definition")
    assert _views(world, "rep") == []


def test_saving_under_the_same_name_replaces_the_view(world: World) -> None:
    first = _save(world, "rep", "Pipeline")

    again = saved_views.save_view(
        world.workspace,
        env=ENV,
        entity="deal",
        name="  Pipeline ",
        definition=_definition(sort=["amount"]),
        shared=True,
        principal=world.principal("rep"),
    )

    assert again.id == first.id and again.shared and again.definition.sort == ["amount"]
    assert _views(world, "rep") == ["Pipeline"]
    with pytest.raises(Invalid):
        _save(world, "rep", "   ")


def test_an_existing_environment_gets_the_saved_view_table(world: World) -> None:
    with world.workspace.begin(ENV) as conn:
        saved_view.drop(conn)

    initialise_workspace(world.workspace)

    with world.workspace.begin(ENV, readonly=True) as conn:
        count = conn.execute(select(func.count()).select_from(saved_view)).scalar_one()
    assert count == 0
    assert _save(world, "rep", "Back again").id >= 1


# -- saved views: the page -------------------------------------------------------------------------


def test_save_a_view_from_the_page_then_open_it_from_the_menu(world: World) -> None:
    deals(world, *SAMPLE)
    csrf = sign_in(world.client, "boss")
    where = json.dumps({"and": [{"field": "stage", "op": "eq", "value": "won"}]})

    saved = post_form(
        world.client,
        f"{DEALS}/views",
        {"csrf_token": csrf, "name": "Won <b>deals</b>", "filter": where, "sort": "-amount"},
    )
    opened = world.client.get(saved.headers["location"], follow_redirects=False)
    page = world.client.get(opened.headers["location"])
    menu = world.client.get(DEALS)

    assert saved.status_code == 303 and opened.status_code == 303
    assert "filter=" in opened.headers["location"] and "view=" in opened.headers["location"]
    assert titles_in(page.text) == {"Medium", "Large"}
    assert page.text.index(">Large<") < page.text.index(">Medium<")
    assert "Won &lt;b&gt;deals&lt;/b&gt;" in page.text and "<b>deals</b>" not in page.text
    assert saved.headers["location"] in menu.text


def test_saving_and_deleting_views_need_the_csrf_token(world: World) -> None:
    csrf = sign_in(world.client, "rep")
    view = _save(world, "rep", "Mine")

    unsaved = post_form(world.client, f"{DEALS}/views", {"name": "X"})
    undeleted = post_form(world.client, f"{DEALS}/views/{view.id}/delete", {})
    deleted = post_form(world.client, f"{DEALS}/views/{view.id}/delete", {"csrf_token": csrf})

    assert unsaved.status_code == 403 and undeleted.status_code == 403
    assert deleted.status_code == 303 and _views(world, "rep") == []


def test_another_users_shared_view_shows_without_a_delete_button(world: World) -> None:
    shared = _save(world, "rep", "Shared by rep", shared=True)
    private = _save(world, "rep", "Private to rep")
    other, csrf = world.client_of("rep2")

    page = other.get(DEALS)
    refused = post_form(other, f"{DEALS}/views/{shared.id}/delete", {"csrf_token": csrf})
    hidden = other.get(f"{DEALS}/views/{private.id}")

    assert "Shared by rep" in page.text and "Private to rep" not in page.text
    assert f"/views/{shared.id}/delete" not in page.text
    assert refused.status_code == 403 and hidden.status_code == 404


def test_an_invalid_view_is_refused_with_an_error_page(world: World) -> None:
    csrf = sign_in(world.client, "rep")

    answer = post_form(
        world.client,
        f"{DEALS}/views",
        {
            "csrf_token": csrf,
            "name": "Bad",
            "filter": '{"field": "margin", "op": "gt", "value": 1}',
        },
    )

    assert answer.status_code == 422 and "the view cannot be saved" in answer.text


# -- bulk changes ----------------------------------------------------------------------------------


def _bulk(client: TestClient, csrf: str, ids: list[int], **fields: str) -> Any:
    """A bulk post for ``ids`` as the list shows them (each at version 1)."""
    data: dict[str, Any] = {"csrf_token": csrf, "back": DEALS, "id": [str(i) for i in ids]}
    data |= {f"v{i}": "1" for i in ids}
    return client.post(f"{DEALS}/bulk", data=data | fields, follow_redirects=False)


def _record(world: World, record_id: int) -> dict[str, Any]:
    return records.get_record(
        world.workspace,
        env=ENV,
        entity="deal",
        record_id=record_id,
        principal=world.principal("boss"),
    )


def test_bulk_edit_sets_one_field_on_the_selected_records(world: World) -> None:
    ids = deals(world, *SAMPLE)
    csrf = sign_in(world.client, "boss")

    done = _bulk(
        world.client, csrf, [ids["Small"], ids["Lost"]], action="edit", field="stage", value="won"
    )
    page = world.client.get(done.headers["location"])

    assert done.status_code == 303, done.text
    assert "2 record(s) changed." in page.text
    assert _record(world, ids["Small"])["stage"] == "won"
    assert _record(world, ids["Lost"])["stage"] == "won"
    assert _record(world, ids["Medium"])["version"] == 1


def test_a_failing_bulk_edit_changes_nothing_and_shows_the_problems_by_record(
    world: World,
) -> None:
    ids = deals(world, *SAMPLE)
    csrf = sign_in(world.client, "boss")

    answer = _bulk(
        world.client,
        csrf,
        [ids["Small"], ids["Large"]],
        action="edit",
        field="amount",
        value="lots",
    )

    assert answer.status_code == 422
    assert f'data-record-errors="{ids["Small"]}"' in answer.text
    assert f'data-record-errors="{ids["Large"]}"' in answer.text
    assert "Nothing was changed" in answer.text
    assert f'value="{ids["Small"]}" form="bulk-form" data-row-select' in answer.text
    assert _record(world, ids["Small"])["amount"] == 10


def test_a_bulk_edit_of_a_record_changed_since_the_list_was_shown_is_refused(
    world: World,
) -> None:
    ids = deals(world, *SAMPLE)
    csrf = sign_in(world.client, "boss")
    records.update_record(
        world.workspace,
        env=ENV,
        entity="deal",
        record_id=ids["Small"],
        payload={"version": 1, "amount": 11},
        principal=world.principal("boss"),
    )

    answer = _bulk(
        world.client, csrf, [ids["Small"], ids["Large"]], action="edit", field="stage", value="lost"
    )

    assert answer.status_code == 409
    assert f'data-record-errors="{ids["Small"]}"' in answer.text
    assert _record(world, ids["Large"])["stage"] == "won"


def test_bulk_delete_and_transfer(world: World) -> None:
    ids = deals(world, *SAMPLE)
    csrf = sign_in(world.client, "boss")

    deleted = _bulk(world.client, csrf, [ids["Lost"]], action="delete")
    moved = _bulk(world.client, csrf, [ids["Small"], ids["Medium"]], action="transfer", owner="rep")
    rep, _ = world.client_of("rep")

    assert deleted.status_code == 303 and moved.status_code == 303
    assert "Lost" not in titles_in(world.client.get(DEALS).text)
    assert titles_in(rep.get(DEALS).text) == {"Small", "Medium"}


def test_bulk_actions_follow_the_viewers_permissions(world: World) -> None:
    own = add_deal(world, "rep", title="Reps own")
    other = add_deal(world, "boss", title="Boss deal")
    csrf = sign_in(world.client, "rep")

    page = world.client.get(DEALS)
    delete = _bulk(world.client, csrf, [own], action="delete")
    edit_other = _bulk(world.client, csrf, [own, other], action="edit", field="title", value="X")
    forged = _bulk(world.client, "forged", [own], action="delete")

    assert 'value="edit"' in page.text and 'value="delete"' not in page.text
    assert delete.status_code == 403 and "you may not delete" in delete.text
    assert edit_other.status_code == 422
    assert f"<li>#{other}: " in edit_other.text and "Boss deal" not in edit_other.text
    assert forged.status_code == 403
    assert _record(world, own)["title"] == "Reps own"


# -- export and board ------------------------------------------------------------------------------


def test_export_the_filtered_list_as_csv_and_xlsx(world: World) -> None:
    deals(world, *SAMPLE)
    sign_in(world.client, "boss")
    where = json.dumps({"and": [{"field": "stage", "op": "eq", "value": "won"}]})

    page = world.client.get(DEALS, params={"filter": where})
    csv_link = link_after(page.text, ">Export CSV<")
    exported = world.client.get(csv_link)
    xlsx = world.client.get(link_after(page.text, ">Export Excel<"))

    assert exported.status_code == 200 and "filter=" in csv_link
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert sorted(row[1] for row in rows[1:]) == ["Large", "Medium"]
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_export_needs_the_export_permission(world: World) -> None:
    sign_in(world.client, "rep")

    page = world.client.get(DEALS)
    refused = world.client.get(f"{DEALS}/export?format=csv")

    assert "Export CSV" not in page.text and "/export" not in page.text
    assert refused.status_code == 403 and "you may not export" in refused.text


def test_the_board_link_needs_a_readable_single_choice_field(world: World) -> None:
    sign_in(world.client, "boss")
    world.client.cookies.set("formloom_lang", "zh")

    deal_page = world.client.get(DEALS)
    secret_page = world.client.get(f"/app/{ENV}/secret")

    assert f'href="{DEALS}/board">看板<' in deal_page.text
    assert "/board" not in secret_page.text


def test_every_text_of_the_list_page_is_translated() -> None:
    assert set(EN) == set(ZH)
    assert all((ZH[key] and ZH[key] != EN[key]) or key == "bulk_record" for key in EN)


def test_csrf_of_is_found_in_the_list_page(world: World) -> None:
    csrf = sign_in(world.client, "rep")

    assert csrf_of(world.client.get(DEALS).text) == csrf


def test_a_bulk_change_returns_only_to_this_list(world: World) -> None:
    ids = deals(world, *SAMPLE)
    csrf = sign_in(world.client, "boss")
    data = {"csrf_token": csrf, "id": str(ids["Small"]), f"v{ids['Small']}": "1"}

    away = post_form(
        world.client,
        f"{DEALS}/bulk",
        data
        | {
            "action": "edit",
            "field": "stage",
            "value": "won",
            "back": f"https://evil.example{DEALS}?q=x",
        },
    )

    assert away.status_code == 303
    assert away.headers["location"] == f"{DEALS}?done=edit&n=1"


def test_chosen_columns_are_shown_kept_and_saved(world: World) -> None:
    deals(world, *SAMPLE)
    csrf = sign_in(world.client, "rep")

    page = world.client.get(DEALS, params=[("columns", "title"), ("columns", "stage,margin")])
    saved = post_form(
        world.client,
        f"{DEALS}/views",
        {"csrf_token": csrf, "name": "Narrow", "columns": "title,stage"},
    )
    opened = world.client.get(saved.headers["location"], follow_redirects=False)

    head = page.text.split("<thead>")[1].split("</thead>")[0]
    assert "Title" in head and "Stage" in head and "Amount" not in head and "Margin" not in head
    assert 'name="columns" value="title,stage"' in page.text
    assert "columns=title%2Cstage" in opened.headers["location"]


def test_choice_fields_suggest_their_choices(world: World) -> None:
    sign_in(world.client, "rep")

    page = world.client.get(DEALS, params=[("f_field", "stage"), ("f_op", "eq"), ("f_value", "")])

    assert '<datalist id="fl-choices-stage">' in page.text
    assert 'list="fl-choices-stage"' in page.text


def test_the_builder_offers_multi_lookups_and_a_formulas_own_operators(world: World) -> None:
    # given: articles with tags (a multi-lookup) and a text formula
    publish_entities(world.workspace, TAG, ARTICLE)
    admin = world.principal("boss")
    tag_ids = [
        records.create_record(
            world.workspace, env=ENV, entity="tag", payload={"name": n}, principal=admin
        )["id"]
        for n in ("red", "blue")
    ]
    for title, tags in (("Tagged red", [tag_ids[0]]), ("Tagged blue", [tag_ids[1]])):
        records.create_record(
            world.workspace,
            env=ENV,
            entity="article",
            payload={"title": title, "words": 10, "tags": tags},
            principal=admin,
        )
    sign_in(world.client, "boss")
    url = f"/app/{ENV}/article"

    # when
    offered = world.client.get(url)
    by_tag = world.client.get(
        url, params={"f_field": "tags", "f_op": "contains", "f_value": str(tag_ids[0])}
    )
    by_headline = world.client.get(
        url, params={"f_field": "headline", "f_op": "contains", "f_value": "blue"}
    )

    # then
    assert offered.status_code == 200, offered.text
    assert 'value="tags"' in offered.text and 'value="headline"' in offered.text
    assert by_tag.status_code == 200, by_tag.text
    assert "Tagged red" in by_tag.text and "Tagged blue" not in by_tag.text
    assert by_headline.status_code == 200, by_headline.text
    assert "Tagged blue" in by_headline.text and "Tagged red" not in by_headline.text
