"""Signing in and out in a real browser against the real `byteor-cloud serve` process."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from byteor_cloud.db.session import Database
from byteor_cloud.identity import service as identity
from helpers.processes import RunningProcess

pytestmark = pytest.mark.slow

PASSWORD = "a long browser password"


async def test_a_person_signs_in_with_a_password_and_out_again(
    browser: Browser, live_server: RunningProcess, database: Database, tmp_path: Path
) -> None:
    async with database.transaction() as session:
        await identity.ensure_user(session, email="ada@example.com", password=PASSWORD)
    page = await browser.new_page()
    base = live_server.base_url

    await page.goto(f"{base}/auth/login")
    await expect(page).to_have_title("Sign in · ByteOr Cloud")
    await expect(page.get_by_role("heading", name="Sign in to ByteOr Cloud")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "signin.png"), full_page=True)

    # A wrong password: the generic message, still signed out.
    await page.get_by_label("Email").fill("ada@example.com")
    await page.get_by_label("Password").fill("not the right one")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("signin-error")).to_have_text("Incorrect email or password.")
    await expect(page.get_by_label("Email")).to_have_value("ada@example.com")

    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/")
    await expect(page.get_by_test_id("signed-in-email")).to_have_text("ada@example.com")
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "byteor_session"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Lax", "/")
    # The session authenticates the API from the same browser.
    me = await page.request.get(f"{base}/api/v1/me")
    assert (me.status, (await me.json())["email"]) == (200, "ada@example.com")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{base}/auth/login")
    await page.goto(f"{base}/")
    await expect(page.get_by_test_id("signed-in-email")).to_have_count(0)
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert (await page.request.get(f"{base}/api/v1/me")).status == 401
