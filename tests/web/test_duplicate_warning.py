"""A duplicate warning in the web form: the matches are shown, nothing is saved, "Save anyway"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from formloom.platform.app import build_app
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from tests.web.world import DEAL, ENV, post_form, publish_world, sign_in

DEALS = f"/app/{ENV}/deal"
WARN_ON_TITLE = {
    **DEAL,
    "duplicate_rules": [
        {"name": "same_title", "fields": ["title"], "match": "normalised", "action": "warn"}
    ],
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, run_worker=False)
    workspace = app.state.workspace
    publish_world(workspace)
    MetaStore(workspace).apply(
        ENV, [SourceDocument("entity", WARN_ON_TITLE, "deal")], PublishOptions()
    )
    with TestClient(app) as test_client:
        yield test_client


def deal_count(client: TestClient) -> str:
    return client.get(DEALS).text.split('<p class="muted">', 1)[1].split("<", 1)[0]


def test_a_duplicate_is_shown_then_saved_only_when_confirmed(client: TestClient) -> None:
    csrf = sign_in(client, "boss")
    first = post_form(client, f"{DEALS}/new", {"csrf_token": csrf, "title": "Acme renewal"})
    assert first.status_code == 303

    # when: the same title again
    warned = post_form(
        client, f"{DEALS}/new", {"csrf_token": csrf, "title": "acme renewal ", "amount": "70"}
    )

    # then: the warning with a "Save anyway" button of the form, the input kept, nothing saved
    assert warned.status_code == 409
    assert 'form="fl-form" name="confirm_duplicates" value="1"' in warned.text
    assert "Save anyway" in warned.text and 'value="70"' in warned.text
    assert deal_count(client) == "1 records"

    # when: saved anyway
    confirmed = post_form(
        client,
        f"{DEALS}/new",
        {"csrf_token": csrf, "title": "acme renewal ", "amount": "70", "confirm_duplicates": "1"},
    )

    # then
    assert confirmed.status_code == 303
    assert deal_count(client) == "2 records"


def test_the_warning_in_chinese(client: TestClient) -> None:
    client.cookies.set("formloom_lang", "zh")
    csrf = sign_in(client, "boss")
    post_form(client, f"{DEALS}/new", {"csrf_token": csrf, "title": "星辰科技"})

    warned = post_form(client, f"{DEALS}/new", {"csrf_token": csrf, "title": "星辰科技"})

    assert warned.status_code == 409 and "仍然保存" in warned.text
