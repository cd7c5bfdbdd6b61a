"""The dashboard in a real browser: `streamlit run` in a subprocess reaching the test's local cloud over
127.0.0.1, driven by headless Chromium through Playwright. Screenshots go to test-output/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import requests
from dashkit import APP, CAMPAIGN, OUTPUT, ROOT, batch_record, delete_batch, items_of, put_batch

from cliplake_localcloud.cloud import free_port

pytestmark = pytest.mark.e2e

# How long a page may take to show what it should: liveness guards, not speed checks. Under a load of 7 on 2 cores
# (a CI run beside other work) the first page of a cold Streamlit took more than 30 s to open a video.
UI_WAIT_MS = 90_000

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """Debian's chromium, installed with apt when missing."""
    path = shutil.which("chromium")
    if path:
        return path
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is not available")
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium", "chromium-driver"], check=True, capture_output=True, timeout=600
        )
    except (subprocess.SubprocessError, OSError) as err:
        pytest.skip(f"chromium is not installed and `apt-get install chromium` failed: {err}")
    return shutil.which("chromium") or pytest.skip("chromium still missing after apt-get install")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
    executable = _chromium()
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def server(cloud):
    """`streamlit run dashboard/app.py` with the local cloud's environment."""
    port = free_port()
    env = {**os.environ, **cloud.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start:\n{proc.communicate()[0]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def page(browser):
    OUTPUT.mkdir(exist_ok=True)
    p = browser.new_page()
    yield p
    p.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(OUTPUT / f"dashboard-{name}.png"), full_page=True)


def grid_cell(page, text: str):
    """A cell of an st.dataframe (drawn on a canvas; its cells are in the accessibility table)."""
    return page.locator("[role='gridcell']", has_text=text).first


def wait_ready(page) -> None:
    """Until Streamlit has finished running the script."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=UI_WAIT_MS)


def test_library_search_and_video_page(page, server, dropped):
    video = dropped["indexed"]
    page.goto(f"{server}/?page=library")
    wait_ready(page)
    page.get_by_label("Campaign").fill(CAMPAIGN)
    page.get_by_label("Campaign").press("Enter")
    grid_cell(page, "cuts.mp4").wait_for(state="attached", timeout=UI_WAIT_MS)  # the table is a canvas
    wait_ready(page)
    shot(page, "library")

    page.get_by_role("combobox", name="Video").click()
    page.get_by_role("option", name=f"cuts.mp4 ({video['video_id']})").click()
    wait_ready(page)
    page.get_by_role("button", name="Open video").click()
    page.get_by_role("heading", name=video["filename"]).wait_for(timeout=UI_WAIT_MS)
    page.wait_for_selector("[data-testid='stImage'] img", timeout=UI_WAIT_MS)
    wait_ready(page)
    assert f"video={video['video_id']}" in page.url
    assert page.locator("video").count() == 1
    assert page.locator("[data-testid='stImage'] img").count() == 3  # one thumbnail per shot
    assert page.get_by_text(video["credit_line"], exact=False).count() >= 1
    # the player's presigned URL is served by the local cloud and plays (a GET: the signature covers the method)
    src = page.locator("video").get_attribute("src")
    assert requests.get(src, headers={"Range": "bytes=0-0"}, timeout=10).status_code == 206
    shot(page, "video")


def test_live_monitor_follows_a_batch_without_reloading(page, server, cloud, dropped):
    running = batch_record(f"dash-{CAMPAIGN}-29990101000000-cafe", items_of(dropped), "RUNNING",
                           started_at="2999-01-01T00:00:00.000+00:00")  # fmt: skip
    put_batch(cloud, running)
    try:
        page.goto(f"{server}/?page=run")
        page.get_by_text(running["batch_id"]).wait_for(timeout=UI_WAIT_MS)
        page.get_by_text("RUNNING", exact=True).first.wait_for(timeout=10_000)
        shot(page, "monitor-running")
        put_batch(cloud, {**running, "status": "SUCCEEDED", "ended_at": datetime.now(UTC).isoformat()})
        page.get_by_text("SUCCEEDED", exact=True).first.wait_for(timeout=15_000)  # the fragment's refresh
        wait_ready(page)
        shot(page, "monitor-finished")
    finally:
        delete_batch(cloud, running["batch_id"])


def grid_cells(page) -> list[str]:
    """The texts of the history table. st.dataframe draws on a canvas; its accessible cells exist once drawn."""
    grid = page.locator("[data-testid='stDataFrame']").first
    try:
        grid.wait_for(timeout=10_000)
        grid.hover()
        grid.locator("[role='gridcell']").first.wait_for(state="attached", timeout=10_000)
    except Exception as err:  # playwright's TimeoutError: nothing drawn yet
        if type(err).__name__ != "TimeoutError":
            raise
        return []
    return grid.locator("[role='gridcell']").all_text_contents()


def test_start_a_batch_and_see_it_finish(page, server, cloud):
    if "BatchStateMachineArn" not in cloud.outputs:
        pytest.skip("the batch state machine is not deployed yet (no BatchStateMachineArn stack output)")
    page.goto(f"{server}/?page=run")
    wait_ready(page)
    page.get_by_role("button", name="Start batch").click()
    page.get_by_text("Started dash-", exact=False).wait_for(timeout=UI_WAIT_MS)
    name = page.get_by_text("Started dash-", exact=False).inner_text().split()[1]
    shot(page, "batch-started")
    deadline = time.monotonic() + 300
    while True:
        page.goto(f"{server}/?page=history")
        wait_ready(page)
        cells = grid_cells(page)
        if name in cells and ("SUCCEEDED" in cells or "FAILED" in cells):
            break
        assert time.monotonic() < deadline, f"batch {name} did not finish"
        time.sleep(3)
    shot(page, "history")
    page.goto(f"{server}/?page=last")
    page.get_by_text(name).first.wait_for(timeout=UI_WAIT_MS)
    shot(page, "last-execution")
