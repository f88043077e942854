"""The report opened in a real browser as its readers read it: headless Chromium (Debian's) at 1400×1000, driven by
Playwright. The first screen holds the answer; no table is cut off; the page asks for nothing outside its file."""

import re
import shutil

import pandas as pd
import pytest

from workflow_study import DESCENT_RUNS, OPTIMIZERS, PROBLEMS

pytestmark = [pytest.mark.browser, pytest.mark.workflow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREEN = {"width": 1400, "height": 1000}
# The text of every visible text node drawn (at least partly) inside the first screen, in document order (the
# inside of a closed <details> is not visible).
FIRST_SCREEN = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const range = document.createRange(); range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    const shown = node.parentElement && node.parentElement.checkVisibility();
    if (shown && box.height > 0 && box.top < window.innerHeight && box.bottom > 0) seen.push(node.textContent);
  }
  return seen.join(" ");
}"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS,
                                                       headless=True, viewport=SCREEN)
        yield context
        context.close()


def open_page(browser, path):
    """A page of `path` loaded, with the console errors and every URL it requested."""
    page, errors, requests = browser.new_page(), [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, requests


def test_the_first_screen_answers_and_nothing_is_cut_off(browser, study):
    results = study[0] / "results"
    report = results / "report/study.html"
    assert report.stat().st_size < 5_000_000  # no plotly bundle inside: the 3-D views are their own files
    page, errors, requests = open_page(browser, report)
    first = re.sub(r"\s+([:;,.)])", r"\1", " ".join(page.evaluate(FIRST_SCREEN).split()))
    # per problem the best optimizer (the table's rank 1) and each of the article's claims with its verdict
    summary = pd.read_parquet(results / "tables/optimizer_summary.parquet")
    for problem in PROBLEMS:
        best = summary[summary["problem"] == problem].sort_values(["rank", "optimizer"]).iloc[0]["optimizer"]
        assert f"{problem} (" in first, (problem, first)
        assert f"best mean {best} " in first or f"first: {best} ({best} " in first, (problem, best, first)
    claims = pd.read_parquet(results / "tables/article_claims.parquet")
    assert len(claims) == 5
    for claim in claims.itertuples():
        assert f"{claim.verdict}: {' '.join(claim.claim.split())}" in first, claim.claim
    assert "Across problems." in first and "Performance-profile score by final primary metric" in first
    assert page.evaluate("document.querySelector('img').getBoundingClientRect().top") < SCREEN["height"]
    # every table complete: no cell cut to "…"
    cells = page.eval_on_selector_all("td, th", "cells => cells.map(c => c.innerText.trim())")
    assert cells and not [c for c in cells if c in ("…", "...")]
    assert "…" not in page.inner_text("body") and "rows ×" not in page.inner_text("body")
    # the page asks for nothing outside its file (figures are embedded, no script from a CDN)
    assert [url for url in requests if url != report.as_uri() and not url.startswith("data:")] == []
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    # the headline, every profile and the ranks; per problem four training and three tuning figures; Ackley's
    # views and the runs on it
    assert len(widths) == 3 + len(PROBLEMS) * (4 + 3) + 2 and all(w > 100 for w in widths), widths
    text = page.inner_text("body")
    for name in OPTIMIZERS:
        assert name in text
    for heading in ("The answer", "Per problem", "The article's claims, checked", "Tuned comparison", "Cost",
                    "Setup"):
        assert heading in text
    page.screenshot(path=str(report.with_name("study.png")), full_page=True)
    assert report.with_name("study.png").stat().st_size > 100_000
    assert errors == []


def test_the_linked_3d_view_is_live(browser, study):
    report = study[0] / "results/report/study.html"
    page, _, _ = open_page(browser, report)
    link = page.get_attribute("a:text('ackley')", "href")
    view, errors, _ = open_page(browser, (report.parent / link).resolve())
    # plotly draws its scene into the div once initialised: the 3-D view is live, not just markup
    view.wait_for_selector("#ackley-3d .gl-container canvas, #ackley-3d .main-svg", state="attached", timeout=60_000)
    # the surface and one trace per descent run of this study (all on Ackley)
    assert view.evaluate("document.getElementById('ackley-3d')._fullData.length") == 1 + DESCENT_RUNS
    assert errors == []
