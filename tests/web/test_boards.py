"""The kanban board through HTTP (both databases): columns, counts, totals, moves and refusals.

The world of ``tests.web.world`` plus, published here: a validation rule on
``deal`` that refuses the stage `won` without an amount, and a ``deal_viewer``
role (read every deal, change none) for the user ``viewer``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from formloom.platform import flow_submit
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from formloom.platform.web import boards
from tests.identity import create_user, principal_of
from tests.platform.crm_entities import label
from tests.web.world import DEAL, ENV, csrf_of, post_form, publish_world, sign_in

DEALS = f"/app/{ENV}/deal"
BOARD = f"{DEALS}/board"
MOVE = f"{BOARD}/move"
HTMX = {"HX-Request": "true"}
WON_NEEDS_AMOUNT = {
    "name": "won_needs_amount",
    "when": "stage == 'won' && !has(amount)",
    "message": label("A won deal needs an amount", "赢单的商机必须填写金额"),
    "field": "amount",
}
DEAL_VIEWER = {
    "name": "deal_viewer",
    "label": label("Deal viewer", "商机查看者"),
    "entities": {"deal": {"read": "all"}},
}


def publish_board_rules(workspace: Workspace) -> int:
    """The validation rule and the read-only role; the id of the user ``viewer``."""
    documents = [
        SourceDocument("entity", {**DEAL, "validation_rules": [WON_NEEDS_AMOUNT]}, "deal"),
        SourceDocument("role", DEAL_VIEWER, "deal_viewer"),
    ]
    MetaStore(workspace).apply(ENV, documents, PublishOptions())
    return create_user(workspace, "viewer", roles={ENV: ["deal_viewer"]})


@dataclass
class Web:
    client: TestClient
    ids: dict[str, int]


@pytest.fixture
def web(settings: Settings) -> Iterator[Web]:
    app = build_app(settings, run_worker=False)
    ids = publish_world(app.state.workspace)
    ids["viewer"] = publish_board_rules(app.state.workspace)
    with TestClient(app) as client:
        yield Web(client, ids)


def create_deal(client: TestClient, csrf: str, **fields: str) -> int:
    answer = post_form(client, f"{DEALS}/new", {"csrf_token": csrf, **fields})
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def move(
    client: TestClient, csrf: str, record_id: int, to: str, *, version: int = 1, htmx: bool = True
) -> Any:
    data = {
        "csrf_token": csrf,
        "field": "stage",
        "record_id": str(record_id),
        "version": str(version),
        "to": to,
    }
    return client.post(MOVE, data=data, headers=HTMX if htmx else {}, follow_redirects=False)


def column(html: str, value: str) -> str:
    """The markup of the board column holding ``value`` (``""``: the no-value column)."""
    found = re.search(
        rf'<section class="board-column" data-value="{re.escape(value)}".*?</ol>', html, re.S
    )
    assert found is not None, html
    return found.group(0)


def test_columns_follow_the_options_with_counts_totals_and_a_no_value_column(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    first = create_deal(web.client, csrf, title="Alpha", amount="100", stage="new")
    create_deal(web.client, csrf, title="Beta", amount="250", stage="new")
    create_deal(web.client, csrf, title="Gamma", amount="1000", stage="won")
    create_deal(web.client, csrf, title="Delta")

    page = web.client.get(BOARD)

    assert page.status_code == 200
    values = re.findall(r'<section class="board-column" data-value="([^"]*)"', page.text)
    assert values == ["new", "won", "lost", ""]
    assert "2 records" in column(page.text, "new") and "Amount total: 350" in column(
        page.text, "new"
    )
    assert ">1 record<" in column(page.text, "won") and "Amount total: 1,000" in page.text
    assert "0 records" in column(page.text, "lost") and "No records." in column(page.text, "lost")
    assert "Delta" in column(page.text, "") and "No Stage" in page.text
    assert f'href="{DEALS}/{first}"' in column(page.text, "new")
    assert '<link rel="stylesheet" href="/app/static/boards.css">' in page.text
    assert '<script src="/app/static/board.js" defer></script>' in page.text


def test_the_board_shows_only_what_the_viewer_may_read(web: Web) -> None:
    boss = TestClient(web.client.app)
    create_deal(boss, sign_in(boss, "boss"), title="Boss only", amount="900", stage="new")
    csrf = sign_in(web.client, "rep")
    create_deal(web.client, csrf, title="Mine", amount="5", margin="", stage="new")

    page = web.client.get(BOARD)

    assert "Mine" in page.text and "Boss only" not in page.text
    assert ">1 record<" in column(page.text, "new") and "Amount total: 5" in page.text
    assert "Margin" not in page.text


def test_card_text_is_escaped(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    create_deal(web.client, csrf, title="<b>bold</b>", stage="new")

    page = web.client.get(BOARD)

    assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text


def test_a_long_column_links_to_the_filtered_list_and_its_total_stays_exact(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(boards, "COLUMN_LIMIT", 2)
    csrf = sign_in(web.client, "rep")
    for amount in ("1", "20", "300"):
        create_deal(web.client, csrf, title=f"Deal {amount}", amount=amount, stage="new")

    new = column(web.client.get(BOARD).text, "new")
    shown = web.client.get(BOARD).text

    assert new.count('class="board-card"') == 2
    assert "3 records" in new and "Amount total: 321" in shown
    more = re.search(r'<a class="board-more" href="([^"]+)">Show all 3 in the list</a>', shown)
    assert more is not None
    filter_json = '{"field":"stage","op":"eq","value":"new"}'
    assert more.group(1) == f"{DEALS}?{urlencode({'filter': filter_json})}"


def test_the_field_can_be_chosen_and_a_wrong_one_is_explained(web: Web) -> None:
    sign_in(web.client, "rep")

    chosen = web.client.get(BOARD, params={"field": "stage"})
    wrong = web.client.get(BOARD, params={"field": "amount"})
    hidden = web.client.get(BOARD, params={"field": "margin"})

    assert chosen.status_code == 200
    assert wrong.status_code == 404
    assert "`amount` is not a single-choice field of Deal you may see" in wrong.text
    assert "choose one of: `stage`" in wrong.text
    assert hidden.status_code == 404 and "Margin" not in hidden.text


def test_an_entity_without_a_choice_field_has_no_board_in_either_language(web: Web) -> None:
    sign_in(web.client, "boss")

    english = web.client.get(f"/app/{ENV}/secret/board")
    web.client.get("/app/lang/zh")
    chinese = web.client.get(f"/app/{ENV}/secret/board")

    assert english.status_code == 404
    assert "Secret has no single-choice field you may see" in english.text
    assert chinese.status_code == 404 and "机密没有您可查看的单选字段" in chinese.text


def test_the_board_needs_read_permission(web: Web) -> None:
    sign_in(web.client, "rep")

    refused = web.client.get(f"/app/{ENV}/secret/board")

    assert refused.status_code == 403


def test_a_move_saves_the_record_and_answers_the_board_with_new_figures(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Acme", amount="100", stage="new")
    create_deal(web.client, csrf, title="Other", amount="7", stage="new")

    answer = move(web.client, csrf, deal_id, "won")

    assert answer.status_code == 200
    assert answer.text.startswith('<section id="board"') and "<html" not in answer.text
    assert "“Acme” moved to won." in answer.text
    assert "Acme" in column(answer.text, "won") and "Acme" not in column(answer.text, "new")
    assert "Amount total: 100" in column(answer.text, "won")
    assert "Amount total: 7" in column(answer.text, "new")
    record = web.client.get(f"{DEALS}/{deal_id}").text
    assert "Changed" in record


def test_a_move_to_the_no_value_column_clears_the_field(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Loose", stage="lost")

    answer = move(web.client, csrf, deal_id, "")

    assert answer.status_code == 200
    assert "Loose" in column(answer.text, "") and "“Loose” moved to No Stage." in answer.text


def test_without_javascript_a_move_redirects_to_the_board(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Plain", amount="3", stage="new")

    answer = move(web.client, csrf, deal_id, "lost", htmx=False)

    assert answer.status_code == 303 and answer.headers["location"] == f"{BOARD}?field=stage"
    assert "Plain" in column(web.client.get(BOARD).text, "lost")


def test_a_move_a_validation_rule_refuses_is_explained_and_the_card_stays(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="No amount", stage="new")

    answer = move(web.client, csrf, deal_id, "won")
    plain = move(web.client, csrf, deal_id, "won", htmx=False)

    assert answer.status_code == 422
    assert "“No amount” was not moved: A won deal needs an amount" in answer.text
    assert "No amount" in column(answer.text, "new") and "No amount" not in column(
        answer.text, "won"
    )
    assert plain.status_code == 422 and "<html" in plain.text
    assert "A won deal needs an amount" in plain.text


def test_a_refusal_is_given_in_chinese_to_a_chinese_viewer(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="无金额", stage="new")
    web.client.get("/app/lang/zh")

    answer = move(web.client, csrf, deal_id, "won")

    assert answer.status_code == 422
    assert "“无金额”未能移动：赢单的商机必须填写金额" in answer.text
    assert "无stage" in answer.text  # the world labels the field `stage` in Chinese too


def test_a_stale_card_is_refused_and_the_board_shows_the_record_as_it_is(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Raced", amount="1", stage="new")
    assert move(web.client, csrf, deal_id, "lost").status_code == 200

    answer = move(web.client, csrf, deal_id, "won", version=1)

    assert answer.status_code == 409
    assert "“Raced” was changed by someone else" in answer.text
    assert "Raced" in column(answer.text, "lost")
    assert 'name="version" value="2"' in column(answer.text, "lost")


def test_a_viewer_who_may_not_update_gets_no_move_and_a_forged_one_is_refused(
    web: Web,
) -> None:
    rep = TestClient(web.client.app)
    deal_id = create_deal(rep, sign_in(rep, "rep"), title="Theirs", amount="1", stage="new")
    csrf = sign_in(web.client, "viewer")

    page = web.client.get(BOARD)
    forged = move(web.client, csrf, deal_id, "won")

    assert "Theirs" in column(page.text, "new")
    assert 'class="board-move"' not in page.text and 'draggable="true"' not in page.text
    assert forged.status_code == 403
    assert "“Theirs” was not moved: you may not change `deal` records" in forged.text


def test_a_move_needs_the_csrf_token_and_a_whole_request(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Guarded", stage="new")

    forged = move(web.client, "forged", deal_id, "won")
    broken = web.client.post(
        MOVE, data={"csrf_token": csrf, "field": "stage", "record_id": "x"}, headers=HTMX
    )

    assert forged.status_code == 403 and 'id="board"' not in forged.text
    assert broken.status_code == 422 and "id and version are needed" in broken.text
    assert "Guarded" in column(web.client.get(BOARD).text, "new")


def test_a_move_after_the_session_ended_sends_htmx_to_the_sign_in_page(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Late", stage="new")
    post_form(web.client, "/app/logout", {"csrf_token": csrf})

    answer = move(web.client, csrf, deal_id, "won")

    assert answer.headers["HX-Redirect"] == "/app/login?next=%2Fapp%2Fproduction%2Fdeal%2Fboard"


def test_the_board_assets_are_served(web: Web) -> None:
    assert web.client.get("/app/static/board.js").status_code == 200
    assert web.client.get("/app/static/boards.css").status_code == 200


def test_the_board_is_in_chinese_for_a_chinese_viewer(web: Web) -> None:
    sign_in(web.client, "rep")
    web.client.get("/app/lang/zh")

    page = web.client.get(BOARD)

    assert "商机看板" in page.text and "列表视图" in page.text and "0 条记录" in page.text
    assert csrf_of(page.text)


def test_a_move_that_makes_a_field_required_is_refused_with_the_field_named(web: Web) -> None:
    lost_needs_reason = {"field": "stage", "op": "eq", "value": "lost"}
    fields: list[dict[str, Any]] = [
        {**f, "required_when": lost_needs_reason} if f["name"] == "discount_reason" else f
        for f in DEAL["fields"]  # type: ignore[attr-defined]
    ]
    deal = {**DEAL, "fields": fields, "validation_rules": [WON_NEEDS_AMOUNT]}
    workspace = web.client.app.state.workspace  # type: ignore[attr-defined]
    MetaStore(workspace).apply(ENV, [SourceDocument("entity", deal, "deal")], PublishOptions())
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Lost cause", stage="new")

    answer = move(web.client, csrf, deal_id, "lost")

    assert answer.status_code == 422
    assert "“Lost cause” was not moved: Discount reason is required" in answer.text
    assert "Lost cause" in column(answer.text, "new")


def test_a_record_in_approval_stays_where_it_is_with_the_reason(web: Web) -> None:
    workspace = web.client.app.state.workspace  # type: ignore[attr-defined]
    MetaStore(workspace).apply(ENV, [approval_flow(web.ids["boss"])], PublishOptions())
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web.client, csrf, title="Pending", amount="10", stage="new")
    flow_submit.submit(
        workspace,
        env=ENV,
        entity="deal",
        record_id=deal_id,
        principal=principal_of(workspace, web.ids["rep"]),
    )

    answer = move(web.client, csrf, deal_id, "won")

    assert answer.status_code == 423
    assert f"“Pending” was not moved: `deal` {deal_id} is in approval" in answer.text
    assert "Pending" in column(answer.text, "new")


def approval_flow(approver: int) -> SourceDocument:
    """A one-step approval of deals by ``approver``."""
    body = {
        "name": "deal_check",
        "label": label("Deal check", "商机审核"),
        "entity": "deal",
        "nodes": [
            {"id": "start", "type": "start", "label": label("Submitter", "发起人"), "next": "ok"},
            {
                "id": "ok",
                "type": "approver",
                "label": label("Check", "审核"),
                "assignees": [{"type": "users", "users": [approver]}],
                "next": "done",
            },
            {"id": "done", "type": "end", "label": label("Done", "完成"), "outcome": "approved"},
        ],
    }
    return SourceDocument("flow", body, "deal_check")
