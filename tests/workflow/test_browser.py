"""The report opened in a real browser: headless Chromium (Debian's), driven by Playwright."""

import shutil

import pytest

from workflow_study import DESCENT_RUNS, OPTIMIZERS, PROBLEMS

pytestmark = [pytest.mark.browser, pytest.mark.workflow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS,
                                                       headless=True, viewport={"width": 1300, "height": 900})
        yield context
        context.close()


def test_report_loads_with_images_3d_view_and_no_errors(browser, study):
    report = study[0] / "results/report/study.html"
    page = browser.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri(), wait_until="load")
    # plotly draws its scene into the div once initialised: the 3-D view is live, not just markup
    page.wait_for_selector("#ackley-3d .gl-container canvas, #ackley-3d .main-svg", state="attached", timeout=60_000)
    # the surface and one trace per descent run of this study (all on Ackley)
    assert page.evaluate("document.getElementById('ackley-3d')._fullData.length") == 1 + DESCENT_RUNS
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    # the profile and ranks, per problem four training and three tuning figures, the Ackley views and runs
    assert len(widths) == 2 + len(PROBLEMS) * (4 + 3) + 2 and all(w > 100 for w in widths), widths
    text = page.inner_text("body")
    for name in OPTIMIZERS:
        assert name in text
    assert "The article's claims, checked" in text and "The answer" in text and "Tuned comparison" in text
    page.screenshot(path=str(report.with_name("study.png")), full_page=True)
    assert report.with_name("study.png").stat().st_size > 100_000
    assert errors == []
