"""publisher-web in a real browser (headless Chromium through Selenium), served by
`python -m publisher.web` beside a running system: the overview loads without a
console error, draws the thumbnails from the CDN, refreshes itself as jobs
complete, and a retry through the login publishes a failed file. It leaves a
screenshot at .run/web-overview.png for people to look at."""

import json
import os
import shutil
from pathlib import Path

import pytest

from devstack import procs
from devstack.ports import wait_until
from devstack.s3 import SeaweedS3
from tests.conftest import CORPUS
from tests.support.stack import Stack

pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
TOKEN = "browser-test-admin-token"
SCREENSHOT = procs.ROOT / ".run" / "web-overview.png"


@pytest.fixture
def browser(tmp_path):
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), \
        "chromium and chromium-driver are missing: `make chromium` installs them (make test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def public_s3(tmp_path_factory):
    """A bucket anyone may read, as the CDN's origin is (SeaweedFS's anonymous identity)."""
    root = tmp_path_factory.mktemp("public-s3")
    server = SeaweedS3(root / "data", bucket="public-media")
    identities = {"identities": [
        {"name": "publisher", "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
         "actions": ["Admin", "Read", "List", "Write", "Tagging"]},
        {"name": "anonymous", "actions": [f"Read:{server.bucket}"]},
    ]}
    server.s3_config = root / "identities.json"
    server.s3_config.write_text(json.dumps(identities))
    yield server.start()
    server.stop()


@pytest.fixture
def page(pg_server, public_s3, origin, tmp_path):
    """A running system whose CDN is its bucket, and its page on a free port."""
    (tmp_path / "stack").mkdir()
    stack = Stack(pg_server, public_s3, origin, tmp_path / "stack", CDN_BASE_URL=f"{public_s3.endpoint}/"
                  f"{public_s3.bucket}", ADMIN_TOKEN=TOKEN)
    stack.start_workers(processes=1, threads=2)
    stack.start_listener()
    yield stack, stack.start_web()
    stack.stop()


def drawn_thumbnails(driver) -> int:
    return driver.execute_script(
        "return [...document.querySelectorAll('#overview img.full')]"
        ".filter(i => i.complete && i.naturalWidth > 0 && i.classList.contains('loaded')).length")


def shown_count(driver, status) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'[data-status="{status}"]').text


def test_the_page_in_chromium_draws_refreshes_and_retries_through_the_login(page, browser, origin_root):
    stack, url = page
    first = stack.wait_for(stack.publish("progressive.jpg"))
    assert first["status"] == "completed"

    browser.get(url + "/")
    wait_until(lambda: drawn_thumbnails(browser) == 1, 30, "the thumbnail to be drawn", 0.1)
    assert browser.find_elements(By.CSS_SELECTOR, "#overview img.lqip"), "no placeholder under the thumbnail"
    browser.execute_script("window.notReloaded = true")

    # A job that completes while the page is open shows up without a reload.
    second = stack.wait_for(stack.publish("adobe-rgb.jpg"))
    assert second["status"] == "completed"
    wait_until(lambda: shown_count(browser, "completed") == "2" and drawn_thumbnails(browser) == 2, 30,
               "the overview to show the second publish", 0.2)
    assert browser.execute_script("return window.notReloaded") is True
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    # A file not at the origin yet fails; once it is there, a retry through the login publishes it.
    failed = stack.wait_for(stack.publish("arrives-later.jpg"))
    assert failed["status"] == "failed"
    shutil.copy(CORPUS / "progressive.jpg", origin_root / "arrives-later.jpg")
    browser.get(f"{url}/jobs/{failed['id']}")
    assert not browser.find_elements(By.XPATH, "//button[text()='Retry']")
    browser.find_element(By.LINK_TEXT, "Log in to act").click()
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    browser.find_element(By.XPATH, "//button[text()='Log in']").click()
    wait_until(lambda: browser.current_url == f"{url}/jobs/{failed['id']}", 10, "the login to lead back", 0.1)
    browser.find_element(By.XPATH, "//button[text()='Retry']").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".flash"), 10, "the retry to be confirmed", 0.1)
    assert "pending" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert stack.wait_for(failed["id"])["status"] == "completed"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_in_chromium_a_search_finds_a_sales_failures_and_one_confirmed_bulk_retry_publishes_them(page, browser,
                                                                                                  origin_root):
    stack, url = page
    # A sale's photos were published before they reached the origin: all fail, as does another sale's.
    sale = [stack.publish(f"sale-12/lot-{n}.jpg") for n in range(3)]
    other = stack.publish("sale-13/lot-1.jpg")
    assert {stack.wait_for(j)["status"] for j in [*sale, other]} == {"failed"}
    for n in range(3):
        (origin_root / "sale-12").mkdir(exist_ok=True)
        shutil.copy(CORPUS / "progressive.jpg", origin_root / "sale-12" / f"lot-{n}.jpg")

    browser.get(f"{url}/login?next=/jobs")
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    browser.find_element(By.XPATH, "//button[text()='Log in']").click()
    wait_until(lambda: browser.current_url == f"{url}/jobs", 10, "the login to lead to the job list", 0.1)
    browser.find_element(By.NAME, "q").send_keys("sale-12/")
    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("failed")
    browser.find_element(By.XPATH, "//button[text()='Show']").click()
    wait_until(lambda: "q=sale-12" in browser.current_url, 10, "the search to be shown", 0.1)
    listed = {int(a.text) for a in browser.find_elements(By.CSS_SELECTOR, "table.jobs tr.failed td:first-child a")}
    assert listed == set(sale)

    browser.find_element(By.LINK_TEXT, "Retry…").click()
    assert browser.find_element(By.CSS_SELECTOR, ".preview .count").text == "3"
    assert {stack.job(j)["status"] for j in sale} == {"failed"}  # the preview changed nothing
    browser.find_element(By.XPATH, "//button[text()='Retry 3 job(s)']").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".flash"), 10, "the bulk retry to be confirmed", 0.1)
    assert "3 job(s) run again of the 3 the preview counted" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert {stack.wait_for(j)["status"] for j in sale} == {"completed"}
    assert stack.job(other)["status"] == "failed"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
