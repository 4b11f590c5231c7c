"""Browser journeys in real headless Chromium (Debian's chromium + chromedriver, Selenium).

A live syndic (werkzeug server in a thread) on a SQLite file with the demo data; axe-core
(tests/browser/node_modules, installed by `make test`) checks accessibility on each page;
screenshots go to tests/artifacts/. The tests skip, saying why, when Chromium is absent.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from config.auth import SYSTEM, User, update_user
from config.db import db as _db
from tests.conftest import build_app, make_settings

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "demo-password-2021"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from config.demo import load_demo

    tmp = tmp_path_factory.mktemp("live")
    settings = make_settings(f"sqlite:///{tmp / 'live.db'}", tmp).replace(cookie_secure=False)
    app = build_app(settings)
    app.config["TESTING"] = False
    with app.app_context():
        upgrade()
        load_demo()
        for user in _db.session.query(User).all():
            update_user(user, {"password": PASSWORD}, actor=SYSTEM)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.skip(
            "Chromium/chromedriver are not installed (make test installs the Debian "
            "packages chromium and chromium-driver): browser journeys not run"
        )
    if not AXE.exists():
        pytest.skip("axe-core is missing: run `npm ci --prefix tests/browser` (make test does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        "--lang=fr-FR",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={Path(__import__('tempfile').mkdtemp())}")
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


def _replaced(element: Any) -> bool:
    """True once ``element``'s document has been replaced: the element is stale, or Chromium
    answers about it "Node with given id does not belong to the document" (seen while the
    next document is being set up, in the wait as well as in the click)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


class Pages:
    """Small helpers over the WebDriver: visit, fill, submit, check with axe, screenshot."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver, self.base = driver, base

    def visit(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def fill(self, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            element = self.find(f'[name="{name}"]')
            if element.tag_name == "select":
                from selenium.webdriver.support.ui import Select

                Select(element).select_by_value(value)
            elif element.get_attribute("type") in ("date", "month"):
                # typing into a date input follows the browser's locale; set the ISO value
                self.driver.execute_script("arguments[0].value = arguments[1]", element, value)
            else:
                element.clear()
                element.send_keys(value)

    def submit(self, css: str = "main form button[type=submit]") -> None:
        """Click a submit button and wait for the next page to replace this one."""
        self.click_and_wait(css)

    def click_and_wait(self, css: str) -> None:
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        for attempt in range(3):
            # Chromium can still be settling the document it just loaded: a click then fails
            # with "Node with given id does not belong to the document". Wait for a complete
            # document, and try again if the click failed without leaving the page.
            WebDriverWait(self.driver, 15).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
            old = self.find("html")
            try:
                self.find(css).click()
            except (StaleElementReferenceException, WebDriverException) as exc:
                transient = isinstance(exc, StaleElementReferenceException) or (
                    "does not belong to the document" in str(exc)
                )
                if not transient or attempt == 2:
                    raise
                if _replaced(old):
                    return  # the click went through: the page changed
                continue
            WebDriverWait(self.driver, 15).until(lambda _d, page=old: _replaced(page))
            return

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base)

    @property
    def text(self) -> str:
        return self.find("body").text

    def sign_in(self, username: str) -> None:
        self.visit("/connexion")
        self.fill({"username": username, "password": PASSWORD})
        self.submit()

    def sign_out(self) -> None:
        self.click_and_wait("header form.inline:last-of-type button")

    def check(self, name: str) -> dict[str, Any]:
        """Screenshot the page and run axe-core: no serious or critical violation allowed."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', description: String(e)}]));"
        )
        bad = [v for v in result if v.get("impact") in ("serious", "critical")]
        summary = {"page": name, "violations": len(result), "serious_or_critical": len(bad)}
        (ARTIFACTS / f"{name}.axe.txt").write_text(
            "\n".join(f"{v['impact']}: {v['id']} — {v.get('description', '')}" for v in result)
            or "none"
        )
        assert not bad, [
            (v["id"], v["impact"], [n["target"] for n in v.get("nodes", [])][:3]) for v in bad
        ]
        return summary


@pytest.fixture()
def pages(driver: Any, live_server: str) -> Pages:
    driver.delete_all_cookies()
    return Pages(driver, live_server)
