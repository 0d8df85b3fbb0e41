"""The list page in Chromium: the filter builder, saved views and bulk selection.

The module's own ``server`` (the conftest's pattern) also creates deals owned by the
sales rep, so that a filter has something to find. Screenshot: ``list-filters.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from formloom.platform import records
from tests.browser.conftest import Server
from tests.browser.harness import browser_app, serving, shoot
from tests.browser.test_staff_app import sign_in
from tests.identity import principal_of
from tests.web.world import ENV, publish_world

DEALS = (
    ("Alpha won big", 900, "won"),
    ("Beta won small", 20, "won"),
    ("Gamma new big", 800, "new"),
    ("Delta lost", 500, "lost"),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app = browser_app(tmp_path_factory, "lists")
    workspace = app.state.workspace
    ids = publish_world(workspace)
    rep = principal_of(workspace, ids["rep"])
    for title, amount, stage in DEALS:
        records.create_record(
            workspace,
            env=ENV,
            entity="deal",
            payload={"title": title, "amount": amount, "stage": stage},
            principal=rep,
        )
    with serving(app) as url:
        yield Server(url, ids)


def listed(page: Any) -> set[str]:
    """The titles the table shows."""
    return set(page.locator("table.records tbody td:nth-child(3) a").all_inner_texts())


def test_list_filter_and_saved_view(page: Any, server: Server) -> None:
    sign_in(page, server)
    assert listed(page) == {title for title, _, _ in DEALS}

    page.locator("details.filters > summary").click()
    rows = page.locator("[data-filter-row]")
    rows.nth(0).locator("[data-filter-field]").select_option("stage")
    assert rows.nth(0).locator("option[value='gt']").is_disabled()
    rows.nth(0).locator("[data-filter-op]").select_option("eq")
    rows.nth(0).locator("[data-filter-value]").fill("won")
    page.get_by_role("button", name="Add condition").click()
    rows.nth(1).locator("[data-filter-field]").select_option("amount")
    rows.nth(1).locator("[data-filter-op]").select_option("ge")
    rows.nth(1).locator("[data-filter-value]").fill("100")
    page.get_by_role("button", name="Apply filter").click()

    page.wait_for_url("**f_field=**")
    assert listed(page) == {"Alpha won big"}
    page.locator("details.views-menu > summary").click()
    page.get_by_label("View name").fill("Big wins")
    page.get_by_role("button", name="Save view").click()
    page.wait_for_url("**view=**")
    assert page.get_by_role("heading", name="Deal · Big wins").is_visible()

    page.locator("details.views-menu > summary").click()
    page.get_by_role("link", name="All records").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/deal")
    assert len(listed(page)) == len(DEALS)
    page.locator("details.views-menu > summary").click()
    page.get_by_role("link", name="Big wins").click()
    page.wait_for_url("**view=**")
    assert listed(page) == {"Alpha won big"}
    assert page.locator("details.filters").get_attribute("open") is not None
    page.locator("details.views-menu > summary").click()
    shoot(page, "list-filters")


def test_a_bad_filter_is_explained_and_rows_can_be_removed(page: Any, server: Server) -> None:
    sign_in(page, server)
    page.locator("details.filters > summary").click()
    rows = page.locator("[data-filter-row]")
    rows.nth(0).locator("[data-filter-field]").select_option("amount")
    rows.nth(0).locator("[data-filter-op]").select_option("gt")
    rows.nth(0).locator("[data-filter-value]").fill("lots")
    page.get_by_role("button", name="Apply filter").click()

    alert = page.locator("[data-filter-problems]")
    assert alert.is_visible() and "Condition 1 (Amount)" in alert.inner_text()
    page.locator("[data-filter-row]").nth(0).get_by_role("button", name="Remove condition").click()
    page.get_by_role("button", name="Apply filter").click()
    assert len(listed(page)) == len(DEALS)


def test_select_all_and_a_bulk_edit(page: Any, server: Server) -> None:
    sign_in(page, server)
    page.locator("details.filters > summary").click()
    row = page.locator("[data-filter-row]").nth(0)
    row.locator("[data-filter-field]").select_option("stage")
    row.locator("[data-filter-value]").fill("lost")
    page.get_by_role("button", name="Apply filter").click()
    assert listed(page) == {"Delta lost"}
    assert page.locator("#bulk-form").is_hidden()

    page.get_by_label("Select all on this page").check()
    page.get_by_label("Action").select_option("edit")
    page.get_by_label("Field to set").select_option("discount")
    page.get_by_label("New value (empty clears the field)").fill("5")
    page.get_by_role("button", name="Apply to selected").click()

    assert page.get_by_role("status").inner_text() == "1 record(s) changed."
    assert listed(page) == {"Delta lost"}
