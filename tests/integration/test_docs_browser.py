"""The API reference works for a person in a real browser (Debian's chromium, driven by Selenium).

A demo case manager opens the gateway's /docs/, logs in through the page's own login (authorization code with
PKCE in a popup, client `api-docs`), runs "Try it out" on register person with the page's default body and
gets 201, then reads the person back from the page. Chromium and chromedriver come from Debian (`make
browser`, part of `make test`); nothing else is downloaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.integration

PASSWORD = "thb-local-demo-1"  # the local realm's demo password (realm/local-realm.json)
WAIT_S = 60


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromedriver are missing: run `make browser`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="thb-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(browser: WebDriver) -> WebDriverWait:
    return WebDriverWait(browser, WAIT_S)


def _click(browser: WebDriver, element: WebElement) -> None:
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    browser.execute_script("arguments[0].click();", element)


def _operation(browser: WebDriver, method: str, path: str) -> WebElement:
    """The operation block of Swagger UI for `method path`, expanded."""
    blocks = _wait(browser).until(
        lambda b: (
            [
                block
                for block in b.find_elements(By.CSS_SELECTOR, f".opblock.opblock-{method.lower()}")
                if block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
                == path
            ]
            or False
        )
    )
    block = blocks[0]
    if "is-open" not in (block.get_attribute("class") or ""):
        _click(browser, block.find_element(By.CSS_SELECTOR, ".opblock-summary-control"))
    _wait(browser).until(lambda _: "is-open" in (block.get_attribute("class") or ""))
    return block


def _try_it_out(browser: WebDriver, block: WebElement) -> None:
    button = _wait(browser).until(lambda _: block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    _click(browser, button)


def _parameter_row(block: WebElement, name: str) -> WebElement:
    return block.find_element(By.CSS_SELECTOR, f"tr[data-param-name='{name}']")


def _set_parameter(browser: WebDriver, block: WebElement, name: str, value: str) -> None:
    row = _parameter_row(block, name)
    selects = row.find_elements(By.CSS_SELECTOR, "select")
    if selects:
        Select(selects[0]).select_by_visible_text(value)
        return
    field = row.find_element(By.CSS_SELECTOR, "input")
    # Typed as a person would (select all, then type): the page keeps what it shows in its own state.
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)
    # Leaving the field hands the value to the page at once (it otherwise waits for the typing to pause).
    field.send_keys(Keys.TAB)


def _execute(browser: WebDriver, block: WebElement) -> tuple[int, Any]:
    _click(browser, block.find_element(By.CSS_SELECTOR, ".execute"))
    status_cell = _wait(browser).until(
        lambda _: (
            block.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status") or False
        )
    )[0]
    status = int(status_cell.text.strip().split()[0])
    body_text = block.find_element(
        By.CSS_SELECTOR, ".live-responses-table .response-col_description pre"
    ).text
    try:
        body = json.loads(body_text)
    except ValueError:
        body = body_text
    return status, body


def _log_in(browser: WebDriver, username: str) -> None:
    """The page's Authorize dialog -> the realm's login form in a popup -> back to the page with a token."""
    opener = browser.current_window_handle
    _click(
        browser,
        _wait(browser).until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".btn.authorize"))
        ),
    )
    dialog = _wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, ".modal-ux"))
    oauth = [
        section
        for section in dialog.find_elements(By.CSS_SELECTOR, ".auth-container")
        if "authorizationCode" in section.text
        or "Authorization Code" in section.text
        or "oauth2" in section.text
    ][0]
    _click(browser, oauth.find_element(By.CSS_SELECTOR, ".btn.modal-btn.auth.authorize"))
    _wait(browser).until(lambda b: len(b.window_handles) > 1)
    popup = next(handle for handle in browser.window_handles if handle != opener)
    browser.switch_to.window(popup)
    _wait(browser).until(lambda b: b.find_element(By.ID, "username")).send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    _click(browser, browser.find_element(By.ID, "kc-login"))
    # oauth2-redirect.html hands the code back to the opener and closes the popup.
    _wait(browser).until(lambda b: popup not in b.window_handles)
    browser.switch_to.window(opener)
    _wait(browser).until(
        lambda b: any(
            "Logout" in button.text for button in b.find_elements(By.CSS_SELECTOR, ".modal-ux .btn")
        )
    )
    _click(browser, browser.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done, .modal-ux .close-modal"))


def test_a_case_manager_logs_in_registers_and_reads_a_person_from_the_api_reference(
    running_platform: Any, browser: WebDriver
) -> None:
    browser.get(running_platform.gateway + "/docs/")
    _wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"))
    _log_in(browser, "al-case-manager")

    register = _operation(browser, "POST", "/v1/identification/persons")
    _try_it_out(browser, register)
    _set_parameter(browser, register, "X-Purpose", "identification")
    _set_parameter(browser, register, "Idempotency-Key", f"docs-page-{time.time_ns()}")
    status, person = _execute(browser, register)
    assert status == 201, person
    assert isinstance(person, dict) and person["owner_country"] == "AL"

    read = _operation(browser, "GET", "/v1/identification/persons/{person_id}")
    _try_it_out(browser, read)
    _set_parameter(browser, read, "person_id", person["id"])
    _set_parameter(browser, read, "X-Purpose", "identification")
    status, again = _execute(browser, read)
    assert status == 200, again
    assert again["id"] == person["id"]
