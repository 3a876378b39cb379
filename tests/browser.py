"""A real browser for the tests: Debian's chromium, headless, driven through selenium and Debian's chromedriver;
and what the console's room page shows, read back from its DOM."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextmanager
def chromium(width: int = 1400, height: int = 2600, network_log: bool = False):
    """`network_log`: keep the DevTools network events (`requests(driver)`) and the console's messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


# Read in the page: each lane, each grade row, and each query of each panel as drawn.
READ_PAGE = """
const body = document.getElementById("dashboards-body") || {dataset: {}};
return JSON.stringify({
  title: document.title, text: (document.body || {}).innerText?.slice(0, 300) || "",
  lanes: [...document.querySelectorAll("[data-incident]")].map(e => ({incident: e.dataset.incident,
    detected_by: e.dataset.detectedBy, latency: e.dataset.latency, text: e.innerText})),
  baseline: (document.querySelector('[data-lane="baseline"]') || {}).innerText || null,
  grade: [...document.querySelectorAll("[data-item]")].map(e => ({item: e.dataset.item, points: e.dataset.points})),
  now: (document.querySelector("[data-now]") || {}).innerText || null,
  window: {start: body.dataset.start, end: body.dataset.end, step: body.dataset.step},
  boards: [...document.querySelectorAll(".board")].map(b => b.innerText),
  panels: [...document.querySelectorAll(".panel")].map(p => ({title: p.dataset.panel, type: p.dataset.type,
    text: p.innerText, charts: p.querySelectorAll("canvas").length,
    queries: [...p.querySelectorAll(".query")].map(q => ({expr: q.dataset.expr,
      series_count: q.dataset.seriesCount, last: q.dataset.last, text: q.innerText,
      links: [...q.querySelectorAll("a")].map(a => a.href)}))})),
});
"""


def read_page(driver) -> dict:
    return json.loads(driver.execute_script(READ_PAGE))


def visit(driver, url: str, ready, timeout: float = 30, shot: Path | None = None) -> dict:
    """Open `url`, wait until `ready(page)` holds for what the page shows, screenshot it; what it shows."""
    driver.get(url)
    deadline, page = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        time.sleep(1)
        page = read_page(driver)
        if ready(page):
            break
    time.sleep(1)  # the charts are drawn on the next animation frames
    page = read_page(driver)
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
    return page


def requests(driver) -> list[str]:
    """The URL of every request the page made since the last call (a browser started with network_log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
