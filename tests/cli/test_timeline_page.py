"""``immutable-deploy history APP --timeline FILE.html``: a real deployment's page (from the local AWS),
opened in a headless browser (Debian's chromium through playwright: never ``playwright install``), shows
what the history says: every phase's bar, in time order; the traffic lane; the title; and nothing
broken (no console error, nothing fetched). Without chromium or playwright these skip, saying why,
except where IMMUTABLE_DEPLOY_BROWSER_TESTS=required (CI: .ci/run), where they fail.

The page's parts that need no browser (escaping, the serving lane's reading) are checked on their own
below."""

from __future__ import annotations

import html
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from immutable_deploy import timeline as pages
from immutable_deploy.cli import exitcodes
from immutable_deploy.localaws.faults import Scenario

#: Debian's chromium (.ci/run installs it), or another Chromium-based browser (GitHub's runners: google-chrome)
CHROMIUM = os.environ.get("IMMUTABLE_DEPLOY_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COMMIT = "9fceb02"


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (the dev extra)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("IMMUTABLE_DEPLOY_BROWSER_TESTS") == "required":
            pytest.fail(f"IMMUTABLE_DEPLOY_BROWSER_TESTS=required but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Opened:
    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)

    def bars(self, css: str) -> list[dict]:
        """Every ``rect.<css>``: its data attributes and its box on screen, left to right as drawn."""
        found = []
        for rect in self.page.locator(f"rect.{css}").all():
            box = rect.bounding_box()
            data = rect.evaluate("e => Object.assign({}, e.dataset)")
            found.append({**data, "box": box, "visible": rect.is_visible()})
        return found


@pytest.fixture
def failed_deployment(local_aws, cli, tmp_path) -> Path:
    """web 3.0.0, whose green never becomes healthy: compensated (blue, then blue and green, then blue)."""
    aws = local_aws(scenario=Scenario(unhealthy_versions=frozenset({"3.0.0"})))
    aws.store_profile("web", aws.world.profile())
    assert cli("deploy", "web", "3.0.0", "--commit", COMMIT).code == exitcodes.ROLLED_BACK
    from tests.cli.test_history_records import all_ended

    all_ended(aws)
    path = tmp_path / "timeline.html"
    run = cli("history", "web", "--timeline", str(path))
    assert run.code == exitcodes.OK, run.err
    assert run.out.startswith("Wrote the timeline of deploy web-3-0-0-")
    return path


def test_a_compensated_deployment_shows_its_phases_in_order_and_blue_green_blue(browser, failed_deployment):
    opened = Opened(browser, failed_deployment)
    page = opened.page
    assert page.title().startswith("web 3.0.0: deploy web-3-0-0-")
    assert page.locator("h1").inner_text().startswith("web 3.0.0: deploy ")
    assert "FAILED (DeploymentRolledBack)" in page.locator(".summary").inner_text()

    phases = opened.bars("phase")
    names = [p["phase"] for p in phases]
    assert names[0] == "start" and names[-1] == "rollback"
    assert {"bake", "image", "fleet", "traffic"} <= set(names) and len(names) == len(set(names))
    for bar in phases:
        assert bar["visible"] and bar["box"]["width"] > 0 and bar["box"]["height"] > 0, bar
    # in time order: each starts no earlier than the one above it, on screen as in the data
    starts = [float(p["start"]) for p in phases]
    assert starts == sorted(starts) and starts[-1] > starts[0]
    lefts = [p["box"]["x"] for p in phases]
    assert lefts == sorted(lefts)
    # a longer phase is a wider bar (image took minutes, approval none)
    width = {p["phase"]: p["box"]["width"] for p in phases}
    assert width["image"] > 10 * width["approval"]

    serving = opened.bars("serving")
    assert [s["serving"] for s in serving] == ["blue", "blue + green", "blue"]
    assert [s["box"]["x"] for s in serving] == sorted(s["box"]["x"] for s in serving)
    assert all(s["visible"] and s["box"]["width"] > 0 for s in serving)

    # the loop that waited for green in service waited the whole healthy timeout, in many polls
    waits = [w for w in opened.bars("wait") if w["loop"] == "WaitForGreenInService"]
    assert len(waits) > 3 and sum(float(w["end"]) - float(w["start"]) for w in waits) == pytest.approx(900, abs=1)
    assert opened.errors == [] and opened.requests == [opened.url]


def test_a_deployment_then_its_rollback(browser, local_aws, cli, tmp_path):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    deployed = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--json").json()
    assert cli("rollback", "web").code == exitcodes.OK
    from tests.cli.test_history_records import all_ended

    all_ended(aws)
    # the newest execution by default: the rollback (green, then both, then blue)
    newest = tmp_path / "rollback.html"
    assert cli("history", "web", "--timeline", str(newest)).code == exitcodes.OK
    opened = Opened(browser, newest)
    assert opened.page.title().startswith("web -: rollback web-rollback-")
    assert [s["serving"] for s in opened.bars("serving")] == ["green", "blue + green", "blue"]
    phases = [p["phase"] for p in opened.bars("phase")]
    assert phases[:2] == ["start", "rollback"] and {"settle", "done"} <= set(phases) and opened.errors == []
    # the deployment, named: blue, then both, then green
    name = deployed["execution"].rsplit(":", 1)[-1]
    named = tmp_path / "deploy.html"
    run = cli("history", "web", "--timeline", str(named), "--execution", name, "--json")
    assert run.code == exitcodes.OK and run.json()["execution"] == name
    opened = Opened(browser, named)
    assert opened.page.title() == f"web 2.0.0: deploy {name}"
    assert [s["serving"] for s in opened.bars("serving")] == ["blue", "blue + green", "green"]
    assert "SUCCEEDED" in opened.page.locator(".summary").inner_text() and opened.errors == []
    assert cli("history", "web", "--timeline", str(named), "--execution", "nope").code == exitcodes.REJECTED_INPUT


# --- without a browser --------------------------------------------------------------------------------

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


def event(n: int, seconds: float, kind: str, **details: Any) -> dict:
    return {"id": n, "timestamp": T0 + timedelta(seconds=seconds), "type": kind, **details}


def hostile_history() -> list[dict]:
    given = '{"app": "<img src=x onerror=alert(1)>", "release": {"version": "\\"><script>alert(2)</script>"}}'
    return [
        event(1, 0, "ExecutionStarted", executionStartedEventDetails={"input": given}),
        event(2, 0, "TaskStateEntered", stateEnteredEventDetails={"name": "<b>LaunchStaging</b>"}),
        event(3, 5, "TaskStateExited", stateExitedEventDetails={"name": "<b>LaunchStaging</b>"}),
        event(4, 5, "TaskStateEntered", stateEnteredEventDetails={"name": "AttachGreen"}),
        event(5, 9, "TaskStateExited", stateExitedEventDetails={"name": "AttachGreen"}),
        event(6, 12, "ExecutionFailed", executionFailedEventDetails={"error": "</title><script>x()</script>"}),
    ]


def test_every_value_of_the_history_is_escaped():
    page = pages.render(pages.parse(hostile_history(), kind="deploy", execution="web-1", status="FAILED"))
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert html.escape("<img src=x onerror=alert(1)>") in page and "&lt;/title&gt;" in page
    # one title, one style, one SVG per section: nothing else became markup
    assert len(re.findall(r"<title>", page)) == 1 + page.count("<rect ") and page.count("<style>") == 1


def test_the_serving_lane_moves_only_when_a_traffic_state_succeeded():
    history = hostile_history()
    timeline = pages.parse(history, kind="deploy")
    assert [(s.name, s.start, s.end) for s in timeline.serving] == [("blue", 0, 9), ("blue + green", 9, 12)]
    # AttachGreen entered but never left (the execution was stopped in it): blue alone served
    stopped = pages.parse(history[:4] + [event(6, 12, "ExecutionAborted")], kind="deploy")
    assert [(s.name, s.start, s.end) for s in stopped.serving] == [("blue", 0, 12)]
    assert stopped.status == "ABORTED" and [s.name for s in stopped.states][-1] == "AttachGreen"
