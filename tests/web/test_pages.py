"""The staff web app through HTTP (both databases): sign-in, CSRF, navigation, lists, forms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from formloom.platform.app import build_app
from formloom.platform.settings import Settings
from tests.web.world import ENV, csrf_of, post_form, publish_world, sign_in

DEALS = f"/app/{ENV}/deal"


@dataclass
class Web:
    client: TestClient
    ids: dict[str, int]


@pytest.fixture
def web(settings: Settings) -> Iterator[Web]:
    app = build_app(settings, run_worker=False)
    ids = publish_world(app.state.workspace)
    with TestClient(app) as client:
        yield Web(client, ids)


def create_deal(web: Web, csrf: str, **fields: str) -> int:
    answer = post_form(web.client, f"{DEALS}/new", {"csrf_token": csrf, **fields})
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def test_pages_need_a_session_and_send_to_the_sign_in_page(web: Web) -> None:
    answer = web.client.get(DEALS, follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/login?next=%2Fapp%2Fproduction%2Fdeal"


def test_a_wrong_password_shows_the_form_again_with_the_reason(web: Web) -> None:
    page = web.client.get("/app/login")

    answer = web.client.post(
        "/app/login",
        data={"login": "rep", "password": "nope", "csrf_token": csrf_of(page.text)},
    )

    assert answer.status_code == 401
    assert "wrong login or password" in answer.text
    assert 'value="rep"' in answer.text


def test_the_sign_in_form_needs_its_token(web: Web) -> None:
    web.client.get("/app/login")

    answer = web.client.post("/app/login", data={"login": "rep", "password": "x"})

    assert answer.status_code == 401
    assert "expired" in answer.text


def test_a_form_post_without_or_with_a_wrong_csrf_token_is_refused(web: Web) -> None:
    sign_in(web.client, "rep")

    missing = post_form(web.client, f"{DEALS}/new", {"title": "A"})
    wrong = post_form(web.client, f"{DEALS}/new", {"title": "A", "csrf_token": "forged"})

    assert missing.status_code == 403 and "csrf" in missing.text.lower()
    assert wrong.status_code == 403
    boss = TestClient(web.client.app)
    sign_in(boss, "boss")
    assert "No records found." in boss.get(DEALS).text


def test_the_navigation_lists_only_readable_entities_and_others_are_refused(web: Web) -> None:
    sign_in(web.client, "rep")

    home = web.client.get(f"/app/{ENV}")
    refused = web.client.get(f"/app/{ENV}/secret")

    assert f'href="/app/{ENV}/deal"' in home.text
    assert f"/app/{ENV}/secret" not in home.text
    assert refused.status_code == 403
    assert "you may not read `secret` records" in refused.text


def test_a_user_without_roles_sees_no_entities(web: Web) -> None:
    sign_in(web.client, "outsider")

    home = web.client.get(f"/app/{ENV}")

    assert "Your roles let you read no records" in home.text
    assert web.client.get(DEALS).status_code == 403


def test_create_list_show_and_edit_a_record(web: Web) -> None:
    csrf = sign_in(web.client, "rep")

    deal_id = create_deal(web, csrf, title="Big deal", amount="100", stage="new")
    listing = web.client.get(DEALS)
    record = web.client.get(f"{DEALS}/{deal_id}")
    form = web.client.get(f"{DEALS}/{deal_id}/edit")
    saved = post_form(
        web.client,
        f"{DEALS}/{deal_id}/edit",
        {"csrf_token": csrf, "version": "1", "title": "Bigger deal", "amount": "150"},
    )

    assert "Big deal" in listing.text and f"{DEALS}/{deal_id}" in listing.text
    assert "Big deal" in record.text and "History" in record.text and "Created" in record.text
    assert 'value="Big deal"' in form.text
    assert saved.status_code == 303
    shown = web.client.get(f"{DEALS}/{deal_id}").text
    assert "Bigger deal" in shown and "Changed" in shown


def test_records_outside_the_read_scope_are_neither_listed_nor_shown(web: Web) -> None:
    boss = TestClient(web.client.app)
    boss_deal = create_deal(Web(boss, web.ids), sign_in(boss, "boss"), title="Boss only")
    csrf = sign_in(web.client, "rep")
    own = create_deal(web, csrf, title="Mine")

    listing = web.client.get(DEALS)
    refused = web.client.get(f"{DEALS}/{boss_deal}")

    assert "Mine" in listing.text and f"{DEALS}/{own}" in listing.text
    assert "Boss only" not in listing.text
    assert refused.status_code == 404 and "Boss only" not in refused.text


def test_hidden_fields_are_absent_from_every_page(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web, csrf, title="Quiet")

    pages = [
        web.client.get(DEALS),
        web.client.get(f"{DEALS}/{deal_id}"),
        web.client.get(f"{DEALS}/{deal_id}/edit"),
        web.client.get(f"{DEALS}/new"),
    ]

    for page in pages:
        assert page.status_code == 200
        assert "Margin" not in page.text and 'name="margin"' not in page.text


def test_a_failed_save_shows_errors_by_the_fields_and_keeps_the_input(web: Web) -> None:
    csrf = sign_in(web.client, "rep")

    missing = post_form(web.client, f"{DEALS}/new", {"csrf_token": csrf, "amount": "7"})
    by_rule = post_form(
        web.client, f"{DEALS}/new", {"csrf_token": csrf, "title": "T", "discount": "30"}
    )
    bad_number = post_form(
        web.client, f"{DEALS}/new", {"csrf_token": csrf, "title": "Kept", "amount": "abc"}
    )

    assert missing.status_code == 422
    assert 'id="fl-title-error"' in missing.text and 'value="7"' in missing.text
    assert by_rule.status_code == 422 and 'id="fl-discount_reason-error"' in by_rule.text
    assert bad_number.status_code == 422
    assert 'id="fl-amount-error"' in bad_number.text and 'value="Kept"' in bad_number.text


def test_a_stale_edit_is_explained_and_the_input_kept(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web, csrf, title="Original")
    other = post_form(
        web.client,
        f"{DEALS}/{deal_id}/edit",
        {"csrf_token": csrf, "version": "1", "title": "Theirs"},
    )
    assert other.status_code == 303

    answer = post_form(
        web.client,
        f"{DEALS}/{deal_id}/edit",
        {"csrf_token": csrf, "version": "1", "title": "Mine"},
    )

    assert answer.status_code == 409
    assert "Someone else saved this record" in answer.text
    assert "Title: Theirs" in answer.text
    assert 'value="Mine"' in answer.text and 'name="version" value="2"' in answer.text


def test_the_language_switch_changes_every_text(web: Web) -> None:
    sign_in(web.client, "rep")

    switched = web.client.get(f"/app/lang/zh?next={DEALS}", follow_redirects=False)
    page = web.client.get(DEALS)

    assert switched.status_code == 303 and switched.headers["location"] == DEALS
    assert "商机" in page.text and "退出登录" in page.text and "搜索" in page.text
    assert "Sign out" not in page.text


def test_the_language_switch_follows_only_paths_of_the_app(web: Web) -> None:
    answer = web.client.get("/app/lang/en?next=https://evil.example/", follow_redirects=False)

    assert answer.headers["location"] == "/app"


def test_labels_are_escaped(web: Web) -> None:
    csrf = sign_in(web.client, "rep")
    deal_id = create_deal(web, csrf, title="<b>bold</b>", notes="<script>x()</script>")

    pages = [web.client.get(f"{DEALS}/{deal_id}"), web.client.get(f"{DEALS}/new")]

    for page in pages:
        assert "<script>window.pwned" not in page.text
        assert "&lt;script&gt;window.pwned" in page.text
    assert "<b>bold</b>" not in pages[0].text and "<script>x()" not in pages[0].text


def test_search_sort_and_pages(web: Web) -> None:
    csrf = sign_in(web.client, "boss")
    for n in range(27):
        create_deal(web, csrf, title=f"Deal {n:02d}", amount=str(n))

    found = web.client.get(DEALS, params={"q": "Deal 13"})
    first = web.client.get(DEALS, params={"sort": "amount"})
    next_link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = web.client.get(next_link.replace("&amp;", "&"))

    assert "Deal 13" in found.text and "Deal 12" not in found.text
    assert first.text.index("Deal 00") < first.text.index("Deal 01")
    assert "Deal 24" in first.text and "Deal 25" not in first.text
    assert "Deal 25" in second.text and "Deal 26" in second.text


def test_sign_out_ends_the_session(web: Web) -> None:
    csrf = sign_in(web.client, "rep")

    answer = post_form(web.client, "/app/logout", {"csrf_token": csrf})

    assert answer.status_code == 303
    assert web.client.get(DEALS, follow_redirects=False).status_code == 303


def test_static_assets_are_served_from_a_fixed_list(web: Web) -> None:
    assert web.client.get("/app/static/htmx.min.js").status_code == 200
    assert web.client.get("/app/static/form_rules.js").status_code == 200
    assert web.client.get("/app/static/app.css").status_code == 200
    assert web.client.get("/app/static/routes.py").status_code == 404
