"""The console in a real Chromium against a real uvicorn server, with dual control on.

One scenario, in order (the tests share the server, the browser and the job): sign in with a
wrong then the right password; an investigator submits a real edge clip; they cannot open the
audit or users pages; a second user (approver) approves; the job's progress bar reaches 100 %;
a single frame is picked and sent for approval; the player's two videos play and stay within a
frame of each other after a seek and a frame step; the auditor's log lists the request, the
approval, the reversal and the views, and "verify" says valid; an admin's users page; a
session expires. Every page is also checked at 420x800 (nothing wider than the window) and
photographed at both sizes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from authority_service.sealed import key_ring
from shared.video_io import probe
from tests.authority_service.conftest import PASSWORD, SECRETS, settings_for, start_server
from tests.authority_service.console.conftest import NARROW, WIDE, main_screenshots_dir
from tests.authority_service.edge_run import EdgeRun, run_edge_on_sample
from tests.toy_models import TOY_MODEL_ID

CASE = "CASE-2026-0117"
JUSTIFICATION = "Robbery at the north entrance, 14:02; the suspect's face is needed."
#: The screenshots the README shows (copied to $UUNET_CONSOLE_SCREENSHOTS when it is set).
MAIN_SHOTS = {"sign-in", "new-request", "job-progress", "approvals", "player", "audit"}
scenario: dict[str, Any] = {}


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory, models_dir) -> EdgeRun:
    """The real edge agent's evidence of the sample clip, its faces sealed to the server's key."""
    return run_edge_on_sample(tmp_path_factory.mktemp("edge"), models_dir / TOY_MODEL_ID, 12)


@pytest.fixture(scope="module")
def evidence_clip(edge_run) -> Path:
    return edge_run.evidence


@pytest.fixture(scope="module")
def server(tmp_path_factory, models_dir, edge_run) -> Iterator[Any]:
    settings = settings_for(
        tmp_path_factory.mktemp("console-authority"), models_dir, jobs={"require_approval": True}
    )
    secrets = replace(SECRETS, sealing_keys=key_ring([edge_run.private_key]))
    live = start_server(settings, secrets)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def ui(browser, server, screenshots) -> UI:
    return UI(browser, server.url, screenshots)


class UI:
    """What a person does in the browser, and what the tests look at."""

    def __init__(self, driver: Any, url: str, shots: Path) -> None:
        self.driver, self.url, self.shots = driver, url, shots

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def find(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector: str) -> str:
        return self.find(selector).text

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def until(self, condition: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition()
            except Exception:  # noqa: BLE001 (an element not there yet: try again)
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            time.sleep(0.05)

    def sign_in(self, user: str, password: str = PASSWORD) -> None:
        self.open("/console/login")
        self.find("#username").send_keys(user)
        self.find("#password").send_keys(password)
        self.find("#sign-in").click()

    def sign_out(self) -> None:
        self.find("#sign-out").click()
        self.until(lambda: "You have signed out." in self.text("#login-message"))

    def shot(self, name: str) -> None:
        """Photograph the page at 1280x800 and at 420x800, checking that at 420 nothing is
        wider than the window (tables scroll inside their own box)."""
        self.js("window.scrollTo(0, 0)")
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))
        self.driver.set_window_size(*NARROW)
        try:
            self.until(lambda: self.js("return window.innerWidth") <= NARROW[0], 5, "narrow")
            wide = self.js(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert wide <= 1, f"{name}: the page is {wide} px wider than a 420 px window"
            self.js("window.scrollTo(0, 0)")
            self.driver.save_screenshot(str(self.shots / f"{name}-narrow.png"))
        finally:
            self.driver.set_window_size(*WIDE)
        docs = main_screenshots_dir()
        if docs is not None and name in MAIN_SHOTS:
            shutil.copy(self.shots / f"{name}.png", docs / f"{name}.png")


def test_sign_in_with_a_wrong_then_the_right_password(ui):
    ui.sign_in("ivy", "not the password at all")
    message = ui.text("#login-message")
    assert "Wrong user name or password." in message and "invalid_credentials" in message
    ui.shot("sign-in")
    ui.sign_in("ivy")
    ui.until(lambda: ui.text("#who") == "ivy (investigator)", what="the home page")
    assert ui.driver.current_url == ui.url + "/console/"


def test_an_investigator_submits_a_real_edge_clip(ui, evidence_clip):
    ui.find("#new-request").click()
    ui.until(lambda: ui.find("#request-form"))
    ui.find("#clip").send_keys(str(evidence_clip))
    ui.find("#case-id").send_keys(CASE)
    ui.find("#justification").send_keys(JUSTIFICATION)
    ui.shot("new-request")
    ui.find("#submit-request").click()
    ui.until(lambda: "/console/jobs/" in ui.driver.current_url, what="the job's page")
    scenario["job"] = ui.driver.current_url.rsplit("/", 1)[1]
    ui.until(lambda: ui.text("#job-status") == "pending approval")
    assert "waiting for a second user" in ui.text("#job-approval")
    assert ui.text("#job-case") == CASE


def test_an_investigator_cannot_open_the_audit_or_users_pages(ui):
    for path, needs in (("/console/audit", "auditor"), ("/console/users", "admin")):
        ui.open(path)
        assert ui.text("h1") == "Not allowed"
        assert ui.text("#error-code") == "permission_denied"
        assert f"it needs {needs}" in ui.text("#error-detail")
    ui.shot("forbidden")
    ui.sign_out()


def test_a_second_user_approves_the_request(ui):
    ui.sign_in("april")
    ui.until(lambda: ui.text("#who") == "april (approver)")
    ui.open("/console/approvals")
    card = ui.find(f"#approval-{scenario['job']}")
    assert card.find_element("css selector", ".requester").text == "ivy"
    assert CASE in card.text and JUSTIFICATION in card.text
    card.find_element("css selector", ".reason").send_keys("Warrant 2026-117 seen and checked.")
    ui.shot("approvals")
    card.find_element("css selector", ".approve").click()
    ui.until(lambda: "approved: it is queued" in ui.text("#flash"))
    assert ui.text("#no-approvals") == "Nothing waits for a decision."
    ui.sign_out()


def test_the_progress_bar_reaches_100_percent(ui):
    ui.sign_in("ivy")
    ui.until(lambda: ui.text("#who") == "ivy (investigator)")
    ui.open(f"/console/jobs/{scenario['job']}")
    ui.until(lambda: ui.find("#job-progress").get_attribute("value") == "100", 30, "100 %")
    ui.until(lambda: ui.find("#open-player"), 10, "the finished page")
    assert ui.text("#job-percent") == "100 %" and ui.text("#job-status") == "succeeded"
    assert "approved by april" in ui.text("#job-approval")
    ui.shot("job-progress")


def test_a_single_frame_is_picked_exactly_and_sent_for_approval(ui, evidence_clip):
    ui.open("/console/frames/new")
    ui.find("#frame-clip").send_keys(str(evidence_clip))
    index = ui.find("#frame-index")
    index.clear()
    index.send_keys("4")
    ui.find("#show-frame").click()
    width = probe(evidence_clip).width
    ui.until(lambda: ui.js("return document.getElementById('frame-public').naturalWidth") == width)
    assert ui.text("#frame-info") == "Frame 4 of 12: the public frame."
    ui.find("#frame-case").send_keys("CASE-2026-0118")
    ui.find("#frame-justification").send_keys(JUSTIFICATION)
    ui.shot("single-frame")
    ui.find("#reverse-frame").click()
    ui.until(lambda: "waits for an approver" in ui.text("#frame-info"), what="the frame job")
    ui.until(lambda: "/console/jobs/" in ui.driver.current_url, what="the frame job's page")
    assert ui.text("#job-status") == "pending approval" and ui.text("#job-case") == "CASE-2026-0118"
    ui.open(f"/console/jobs/{scenario['job']}")  # back to the clip's job for the player


def _media(ui) -> dict[str, Any]:
    return ui.js(
        """const [a, b] = ['video-public', 'video-result'].map((id) => document.getElementById(id));
        return {a: a.currentTime, b: b.currentTime, ready: Math.min(a.readyState, b.readyState),
                seeking: a.seeking || b.seeking, paused: a.paused && b.paused,
                errors: [a.error && a.error.code, b.error && b.error.code], width: b.videoWidth};"""
    )


def test_the_players_two_videos_play_and_stay_in_step(ui):
    ui.find("#open-player").click()
    ui.until(lambda: ui.find("#play").is_enabled(), 30, "both videos loaded")
    fps = float(ui.find("#player").get_attribute("data-fps"))
    assert ui.find("#variant").get_attribute("value") == "yuv444"  # what Chromium shows right
    assert _media(ui)["width"] == 640 and _media(ui)["errors"] == [None, None]
    ui.find("#play").click()
    played = ui.until(
        lambda: (m := _media(ui))["a"] > 0.1 and m["b"] > 0.1 and m, 10, "both playing"
    )
    assert abs(played["a"] - played["b"]) <= 2 / fps  # in step while playing
    ui.until(lambda: _media(ui)["paused"], 10, "the end of the clip")
    ui.js(
        "const s = document.getElementById('seek'); s.value = 6;"
        "s.dispatchEvent(new Event('input'));"
    )
    seeked = ui.until(lambda: (m := _media(ui))["ready"] >= 2 and not m["seeking"] and m)
    assert abs(seeked["a"] - seeked["b"]) < 1 / fps
    assert int(seeked["a"] * fps) == 6 and ui.text("#position").startswith("frame 6 / 12")
    ui.find("#step-forward").click()
    stepped = ui.until(lambda: (m := _media(ui))["ready"] >= 2 and not m["seeking"] and m)
    assert int(stepped["a"] * fps) == int(stepped["b"] * fps) == 7
    ui.find("#show-faces").click()
    ui.until(lambda: ui.find("#overlay-result").is_displayed(), what="the face boxes")
    assert ui.find("#face-legend").is_displayed()
    assert ui.find("#download").get_attribute("href").endswith(f"/jobs/{scenario['job']}/result")
    ui.shot("player")
    ui.sign_out()


def test_the_audit_log_lists_the_request_approval_and_reversal_and_verifies(ui):
    ui.sign_in("audrey")
    ui.until(lambda: ui.text("#who") == "audrey (auditor)")
    ui.open("/console/audit")
    ui.find("#filter-case").send_keys(CASE)
    ui.find("#apply-filters").click()
    ui.until(lambda: "case_id=" in ui.driver.current_url)
    rows = [
        (row.find_element("css selector", ".action").text, row.get_attribute("class"))
        for row in ui.all("#audit-records tbody tr")
    ]
    assert rows[:3] == [
        ("reconstruct_clip", "outcome-pending"),
        ("approve_job", "outcome-granted"),
        ("reconstruct_clip", "outcome-completed"),
    ]
    assert {"view_preview", "read_faces"} <= {action for action, _ in rows[3:]}
    ui.shot("audit")
    ui.find("#audit-records tbody tr a").click()
    ui.until(lambda: ui.text(".field-action") == "reconstruct_clip")
    assert ui.text(".field-case_id") == CASE and ui.text(".field-actor") == "ivy"
    ui.shot("audit-entry")
    ui.open("/console/audit")
    ui.find("#verify-chain").click()
    result = ui.until(lambda: ui.find("#verify-result"))
    assert result.get_attribute("data-valid") == "true" and "valid" in result.text
    ui.shot("audit-verify")
    ui.sign_out()


def test_an_admin_adds_a_user(ui):
    ui.sign_in("adam")
    ui.until(lambda: ui.text("#who") == "adam (admin)")
    ui.open("/console/users")
    ui.find("#new-name").send_keys("bianca")
    ui.find("#new-password").send_keys("a password long enough")
    ui.find("#add-user-button").click()
    ui.until(lambda: "User bianca added as investigator." in ui.text("#flash"))
    assert ui.text("#user-bianca .status") == "active"
    ui.shot("users")
    ui.sign_out()


def test_a_session_expires(ui, server):
    store = server.server.config.app.state.console_sessions
    ttl = server.services.settings.auth.token_ttl_s
    ivy = server.services.users.get("ivy")
    session_id, _ = store.open(ivy, now=time.time() - ttl - 1)  # signed in a token's life ago
    ui.open("/console/login")
    ui.driver.delete_all_cookies()
    ui.driver.add_cookie({"name": "uunet_console", "value": session_id, "path": "/console"})
    ui.open("/console/requests/new")
    message = ui.text("#login-message")
    assert "Your session has expired: sign in again." in message and "token_expired" in message
    assert ui.find("#sign-in").is_displayed()
    ui.shot("session-expired")


def test_no_page_broke_the_content_security_policy_or_threw(ui):
    # Everything the browser logged during the scenario (the log empties as it is read).
    problems = [
        entry["message"]
        for entry in ui.driver.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]
    # The 401/403/404/409 pages the scenario opened on purpose are logged as failed loads.
    unexpected = [m for m in problems if "the server responded with a status of 4" not in m]
    assert unexpected == []
