"""The staff web app in Chromium: sign-in, a form's errors and rules, languages, escaping.

Each test signs in as the sales rep in a fresh browser context. Screenshots of the
main pages go to ``docs/screenshots/`` (referenced from the README).
"""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Server
from tests.browser.harness import shoot
from tests.identity import PASSWORD
from tests.web.world import ENV


def sign_in(page: Any, server: Server, login: str = "rep") -> None:
    page.goto(f"{server.url}/app/{ENV}/deal")
    assert "/app/login" in page.url
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/deal")


def test_sign_in_create_with_an_error_then_fix_it(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/app/login")
    shoot(page, "login")
    sign_in(page, server)
    page.get_by_role("link", name="New").click()

    page.get_by_label("Amount").fill("1200")
    page.get_by_role("button", name="Save").click()

    assert page.locator("#fl-title-error").is_visible()
    assert page.get_by_label("Amount").input_value() == "1200"
    shoot(page, "form-errors")
    page.get_by_label("Title").fill("Acme renewal")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/deal/*")
    assert page.get_by_role("heading", name="Deal #").is_visible()
    assert page.get_by_text("Acme renewal").first.is_visible()
    shoot(page, "record")
    page.get_by_role("link", name="Back to the list").click()
    assert page.get_by_role("link", name="Acme renewal").is_visible()
    shoot(page, "list")


def test_a_conditional_field_appears_and_becomes_required(page: Any, server: Server) -> None:
    sign_in(page, server)
    page.goto(f"{server.url}/app/{ENV}/deal/new")
    reason = page.locator('[data-fl-field="discount_reason"]')
    assert reason.is_hidden()

    page.get_by_label("Title").fill("Discounted")
    page.locator("#fl-discount").fill("30")

    reason.wait_for(state="visible")
    assert reason.locator("[data-fl-required-marker]").is_visible()
    page.get_by_role("button", name="Save").click()
    assert page.locator("#fl-discount_reason-error").is_visible()
    page.get_by_label("Discount reason").fill("Strategic account")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/deal/*")
    assert page.get_by_text("Strategic account", exact=True).is_visible()


def test_the_language_switch(page: Any, server: Server) -> None:
    sign_in(page, server)

    page.get_by_role("link", name="中文").click()

    assert page.get_by_role("button", name="退出登录").is_visible()
    assert page.get_by_role("heading", name="商机").is_visible()
    shoot(page, "list-zh")
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("button", name="Sign out").is_visible()


def test_a_script_in_a_label_is_shown_as_text(page: Any, server: Server) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, server)

    page.goto(f"{server.url}/app/{ENV}/deal/new")

    label = page.locator('label[for="fl-notes"]')
    assert "<script>window.pwned = true</script>" in label.inner_text()
    assert page.evaluate("window.pwned") is None
    assert dialogs == []


def test_a_phone_sized_screen(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800}, locale="en-US")
    page = context.new_page()
    try:
        sign_in(page, server)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        shoot(page, "list-phone")
    finally:
        context.close()
