"""The form widgets in Chromium: lookup type-ahead into a related list, and child-table rows.

Runs its own server (the conftest's pattern) over the related-lists world of
``tests/web/test_related.py``: accounts looked up by contacts, quotes with lines.
Screenshots go to ``docs/screenshots/related.png`` and ``child-rows.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.harness import browser_app, serving, shoot
from tests.identity import PASSWORD
from tests.web.test_related import publish_crm
from tests.web.world import ENV


@pytest.fixture(scope="module")
def crm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app = browser_app(tmp_path_factory, "widgets")
    ids = publish_crm(app.state.workspace)
    with serving(app) as url:
        yield Server(url, ids)


def sign_in(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/app/{ENV}/account")
    page.get_by_label("Login").fill("rep")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/account")


def save(page: Any, server: Server, entity: str) -> str:
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(rf"/app/{ENV}/{entity}/\d+$"))
    return str(page.url)


def test_pick_an_account_by_typing_and_see_the_contact_in_its_related_list(
    page: Any, crm_server: Server
) -> None:
    # given
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/account/new")
    page.get_by_label("Name").fill("Acme Holdings")
    account_url = save(page, crm_server, "account")
    page.goto(f"{crm_server.url}/app/{ENV}/contact/new")
    page.get_by_label("Name").fill("Ann Lee")

    # when
    box = page.get_by_role("combobox", name="Account")
    box.press_sequentially("holdi", delay=30)
    page.get_by_role("option", name="Acme Holdings").click()
    contact_url = save(page, crm_server, "contact")

    # then
    assert page.locator("dd", has_text="Acme Holdings").is_visible()
    page.goto(f"{contact_url}/edit")
    assert page.get_by_role("combobox", name="Account").input_value() == "Acme Holdings"
    page.goto(account_url)
    related = page.locator('[data-related="contact.account"]')
    assert related.get_by_role("link", name="Ann Lee").is_visible()
    shoot(page, "related")
    related.get_by_role("link", name="New").click()
    assert page.get_by_role("combobox", name="Account").input_value() == "Acme Holdings"


def test_a_picked_account_keeps_its_title_after_a_failed_save(
    page: Any, crm_server: Server
) -> None:
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/account/new")
    page.get_by_label("Name").fill("Initech")
    save(page, crm_server, "account")
    page.goto(f"{crm_server.url}/app/{ENV}/contact/new")
    box = page.get_by_role("combobox", name="Account")
    box.press_sequentially("Initech", delay=20)
    page.get_by_role("option", name="Initech").wait_for()
    box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == "Initech"

    page.get_by_role("button", name="Save").click()

    assert page.locator("#fl-name-error").is_visible()
    page.wait_for_function(
        "document.getElementById('fl-account').value === 'Initech'", timeout=5000
    )
    page.get_by_label("Name").fill("Peter")
    save(page, crm_server, "contact")
    assert page.locator("dd", has_text="Initech").is_visible()


def test_typing_without_picking_keeps_the_chosen_record(page: Any, crm_server: Server) -> None:
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/contact/new")
    page.get_by_label("Name").fill("Bo")
    box = page.get_by_role("combobox", name="Account")

    box.press_sequentially("zzz-nothing", delay=20)
    page.get_by_text("No matches").wait_for()
    box.press("Escape")
    page.get_by_label("Name").click()

    assert box.input_value() == ""
    assert page.locator('input[type="hidden"][name="account"]').input_value() == ""


def test_add_two_child_rows_remove_one_and_save(page: Any, crm_server: Server) -> None:
    # given
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/quote/new")
    page.get_by_label("Title").fill("Q-100")
    add = page.get_by_role("button", name="Add row")

    # when
    add.click()
    add.click()
    rows = page.locator("[data-fl-row]:visible")
    assert rows.count() == 2
    rows.nth(0).get_by_label("Product").fill("Pen")
    rows.nth(0).get_by_label("Qty").fill("2")
    rows.nth(1).get_by_label("Product").fill("Ink")
    rows.nth(1).get_by_label("Qty").fill("5")
    shoot(page, "child-rows")
    rows.nth(0).get_by_role("button", name="Remove row").click()
    assert rows.count() == 1
    quote_url = save(page, crm_server, "quote")

    # then
    lines = page.locator('[data-related="quote_line.quote"]')
    assert lines.get_by_role("link", name="Ink", exact=True).is_visible()
    assert lines.get_by_role("link", name="Pen", exact=True).count() == 0
    page.goto(f"{quote_url}/edit")
    assert page.locator("[data-fl-row]:visible").count() == 1
    assert page.locator("[data-fl-row] input[aria-label='Product']").first.input_value() == "Ink"


def test_a_bad_cell_is_shown_next_to_the_cell(page: Any, crm_server: Server) -> None:
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/quote/new")
    page.get_by_label("Title").fill("Q-101")
    page.get_by_role("button", name="Add row").click()
    row = page.locator("[data-fl-row]:visible").first
    row.get_by_label("Product").fill("Pen")
    row.get_by_label("Qty").fill("0")

    page.get_by_role("button", name="Save").click()

    cell = page.locator("[data-fl-row]:visible").first.get_by_label("Qty")
    assert cell.get_attribute("aria-invalid") == "true"
    error = page.locator(f"#{cell.get_attribute('id')}-error")
    assert error.is_visible()


def test_upload_a_logo_and_a_contract_and_see_them_as_attachments(
    page: Any, crm_server: Server, tmp_path: Any
) -> None:
    from tests.web.test_related import PNG

    logo, contract = tmp_path / "logo.png", tmp_path / "合同.pdf"
    logo.write_bytes(PNG)
    contract.write_bytes(b"%PDF-1.4 contract")
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/account/new")
    page.get_by_label("Name").fill("Files Ltd")

    page.get_by_label("Logo").set_input_files(str(logo))
    page.get_by_label("Contract").set_input_files(str(contract))
    page.locator('[data-fl-file] input[name="logo"]').wait_for(state="attached")
    page.locator('[data-fl-file] input[name="contract"]').wait_for(state="attached")
    save(page, crm_server, "account")

    attachments = page.locator(".fl-attachments")
    assert attachments.get_by_role("link", name="合同.pdf").is_visible()
    assert attachments.get_by_role("img", name="logo.png").is_visible()
    natural = attachments.get_by_role("img", name="logo.png").evaluate("img => img.naturalWidth")
    assert natural == 1


def test_region_selects_cascade_from_the_children_endpoint(page: Any, crm_server: Server) -> None:
    sign_in(page, crm_server)
    page.goto(f"{crm_server.url}/app/{ENV}/account/new")
    page.get_by_label("Name").fill("Shenzhen Co")
    province = page.get_by_label("Area Province")
    city = page.get_by_label("Area City")
    district = page.get_by_label("Area District")

    province.select_option(label="广东省")
    city.locator("option", has_text="深圳市").wait_for(state="attached")
    city.select_option(label="深圳市")
    district.locator("option", has_text="南山区").wait_for(state="attached")
    district.select_option(label="南山区")
    province.select_option(label="广西壮族自治区")
    assert city.input_value() == "" and district.input_value() == ""
    city.locator("option", has_text="南宁市").wait_for(state="attached")
    city.select_option(label="南宁市")
    district.locator("option", has_text="青秀区").wait_for(state="attached")
    district.select_option(label="青秀区")
    account_url = save(page, crm_server, "account")

    record_id = account_url.rsplit("/", 1)[1]
    stored = page.request.get(f"{crm_server.url}/api/envs/{ENV}/records/account/{record_id}")
    assert stored.ok, stored.text()
    area = stored.json()["area"]
    assert (area["province"], area["city"], area["district"]) == ("450000", "450100", "450103")
