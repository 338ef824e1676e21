"""The dashboard in a browser (issue 20, acceptance 1): Debian's chromium, driven by Playwright,
against a real server with its two local agents. Each page's screenshot is written to
``$FERRY_SCREENSHOTS`` (by default a folder of the test's own)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import FERRY, ServerProcess
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
LOST_WITHIN_S = 35  # the acceptance's bound, with the server's default of 30 s of silence


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FERRY_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(browser: Browser, server: ServerProcess, token: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + "/")
    return page


def submit_form(page: Page, server: ServerProcess, source: str, at: str, tree: bool) -> str:
    """Submit from the new-transfer form; the id of the transfer whose page it lands on."""
    page.goto(server.url + "/transfers/new")
    page.check(f"input[name=kind][value={'tree' if tree else 'file'}]")
    page.fill("textarea[name=sources]", source)
    page.fill("input[name=destination]", "local:copied")
    page.check("input[name=schedule][value=at]")
    page.fill("input[name=at]", at)
    page.click("#submit")
    page.wait_for_url(re.compile(r"/transfers/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_sign_in_submit_watch_and_cancel(
    start_server,
    browser: Browser,
    shots: Path,
) -> None:
    server = start_server()
    tree = server.cwd / "tree"
    for folder in range(4):
        (tree / f"d{folder}").mkdir(parents=True)
        for number in range(5):
            (tree / f"d{folder}" / f"f{number}.bin").write_bytes(os.urandom(256 * 1024))
    (server.cwd / "later.txt").write_text("later")

    refused = browser.new_page()
    refused.goto(server.url + "/login")
    refused.fill("input[name=token]", "not-a-token")
    refused.click("button[type=submit]")
    expect(refused.locator(".error")).to_contain_text("not known")
    refused.screenshot(path=shots / "login.png")

    page = sign_in(browser, server, server.token)
    expect(page.locator("header .who")).to_contain_text("ADMINISTRATOR")

    # Due a few seconds after its page opens: the page shows it waiting, then follows it to
    # the end through the event stream, with no navigation in between.
    moved = submit_form(page, server, "local:tree", "+6s", tree=True)
    expect(page.locator("#status")).to_have_text("STANDBY")
    page.evaluate("window.sameDocument = true")
    page.screenshot(path=shots / "transfer-waiting.png")
    expect(page.locator("#status")).to_have_text("COMPLETED", timeout=60_000)
    expect(page.locator("#bar")).to_have_attribute("value", "100")
    assert page.evaluate("window.sameDocument") is True  # not reloaded
    expect(page.locator("table.objects tbody tr")).to_have_count(20)
    expect(page.locator("table.objects tbody")).not_to_contain_text("FAILED")
    expect(page.locator("#cancel")).to_have_count(0)
    page.screenshot(path=shots / "transfer.png", full_page=True)
    assert len(list((server.cwd / "copied").rglob("*.bin"))) == 20

    later = submit_form(page, server, "local:later.txt", "+1h", tree=False)
    page.goto(server.url + "/")
    expect(page.locator("#totals .done")).to_have_text("20")
    expect(page.locator("#totals .failed")).to_have_text("0")
    expect(page.locator("#totals .success")).to_have_text("100.0 %")
    expect(page.locator("#links tbody .badge")).to_have_text(["OK"])
    expect(page.locator(f"#next-runs a[href='/transfers/{later}']")).to_be_visible()
    page.screenshot(path=shots / "overview.png", full_page=True)
    page.goto(f"{server.url}/transfers/{later}")
    page.click("#cancel")
    expect(page.locator("#status")).to_have_text("CANCELED")
    assert server.api("GET", f"/api/v1/transfers/{later}").json()["status"] == "CANCELED"

    page.goto(server.url + "/transfers")
    expect(page.locator(f"a[href='/transfers/{moved}']")).to_be_visible()
    expect(page.locator(f"a[href='/transfers/{later}']")).to_be_visible()
    page.screenshot(path=shots / "transfers.png", full_page=True)
    page.select_option("select[name=status]", "CANCELED")
    page.click(".filters button")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    expect(page.locator(f"a[href='/transfers/{later}']")).to_be_visible()

    page.goto(server.url + "/transfers/new")
    page.screenshot(path=shots / "new-transfer.png", full_page=True)
    page.goto(server.url + "/agents")
    expect(page.locator("#agents .status")).to_have_text(["ALIVE", "ALIVE"])
    page.screenshot(path=shots / "agents.png", full_page=True)


def test_a_reader_cannot_cancel_and_forged_posts_are_refused(
    start_server,
    browser: Browser,
    shots: Path,
) -> None:
    server = start_server()
    (server.cwd / "later.txt").write_text("later")
    reader_token = server.cli_json("user", "add", "rita", "--role", "READ", "--scope", "default")
    waiting = server.cli_json("submit", "--at", "+1h", "local:later.txt", "local:copied")["id"]
    cancel_url = f"{server.url}/transfers/{waiting}/cancel"

    # A WRITE-capable session: its cookie alone does not make a POST count.
    admin = sign_in(browser, server, server.token)
    assert admin.request.post(cancel_url, form={}).status == 403
    assert admin.request.post(cancel_url, form={"csrf": "forged"}).status == 403
    submitted = admin.request.post(
        f"{server.url}/transfers/new",
        form={"sources": "local:later.txt", "destination": "local:x", "csrf": "forged"},
    )
    assert submitted.status == 403

    reader = sign_in(browser, server, reader_token["token"]["token"])
    expect(reader.locator("header .who")).to_contain_text("READ")
    expect(reader.locator("a[href='/transfers/new']")).to_have_count(0)
    reader.goto(f"{server.url}/transfers/{waiting}")
    expect(reader.locator("#status")).to_have_text("STANDBY")
    expect(reader.locator("#cancel")).to_have_count(0)
    reader.screenshot(path=shots / "transfer-as-reader.png", full_page=True)
    # Even with the session's own CSRF token, a reader's cancel is refused.
    csrf = reader.locator("header input[name=csrf]").get_attribute("value")
    assert csrf
    assert reader.request.post(cancel_url, form={"csrf": csrf}).status == 403
    assert reader.request.post(cancel_url, form={}).status == 403

    assert server.api("GET", f"/api/v1/transfers/{waiting}").json()["status"] == "STANDBY"
    # Signing out ends the session: its cookie no longer opens a page.
    reader.click("header .who button")
    expect(reader).to_have_url(server.url + "/login")
    reader.goto(f"{server.url}/transfers/{waiting}")
    expect(reader).to_have_url(server.url + "/login")


def test_an_administrator_sets_a_channels_max_active_from_its_page(
    start_server,
    browser: Browser,
    shots: Path,
) -> None:
    server = start_server("--agents", "0")
    channel = {"max_active": 4, "bandwidth": None, "state": "active"}
    assert server.api("PUT", "/api/v1/channels/siteA/siteB", json=channel).status_code == 200
    assert server.api("PUT", "/api/v1/scopes/lab", json={"weight": 3}).status_code == 200

    page = sign_in(browser, server, server.token)
    page.click("header nav a[href='/storages']")
    expect(page.locator("#storages tr[data-storage=local] .status")).to_have_text("reachable")
    page.screenshot(path=shots / "storages.png", full_page=True)
    page.click("header nav a[href='/scopes']")
    expect(page.locator("#scopes tr[data-scope=lab] input[name=weight]")).to_have_value("3")
    page.screenshot(path=shots / "scopes.png", full_page=True)

    page.click("header nav a[href='/channels']")
    row = page.locator("#channels tr[data-channel='siteA→siteB']")
    expect(row.locator("input[name=max_active]")).to_have_value("4")
    row.locator("input[name=max_active]").fill("2")
    row.locator("select[name=state]").select_option("drain")
    row.locator("button.save").click()
    expect(page).to_have_url(server.url + "/channels")
    expect(row.locator("input[name=max_active]")).to_have_value("2")
    expect(row.locator("select[name=state]")).to_have_value("drain")
    expect(row.locator(".active")).to_have_text("0")
    page.screenshot(path=shots / "channels.png", full_page=True)
    # The active counts refresh alone: a stale cell is replaced, a half-typed edit stays.
    row.locator("input[name=max_active]").fill("9")
    row.locator(".active").evaluate("cell => { cell.textContent = 'stale' }")
    expect(row.locator(".active")).to_have_text("0", timeout=10_000)
    expect(row.locator("input[name=max_active]")).to_have_value("9")
    (stored,) = server.api("GET", "/api/v1/channels").json()
    assert (stored["max_active"], stored["state"]) == (2, "drain")
    audit = server.api("GET", "/api/v1/audit").json()
    assert ("dashboard channel set", "siteA→siteB") in [(r["action"], r["target"]) for r in audit]


@pytest.fixture
def remote_agent(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Agents a test starts as processes of their own; any still running is killed after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_an_agent_killed_with_sigkill_turns_lost_on_the_agents_page(
    start_server,
    remote_agent: list[subprocess.Popen[bytes]],
    browser: Browser,
    shots: Path,
    tmp_path: Path,
) -> None:
    server = start_server("--agents", "0")  # the default agent_lost_after_s: 30 s
    invitation = server.api("POST", "/api/v1/agents/invite", json={"name": "edge-1", "ttl_s": 600})
    assert invitation.status_code == 201, invitation.text
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env["FERRY_AGENT_SECRET"] = invitation.json()["secret"]
    (tmp_path / "edge").mkdir()
    with (tmp_path / "edge.log").open("wb") as out:
        agent = subprocess.Popen(
            [*FERRY, "agent", "--server", server.url, "--name", "edge-1"],
            cwd=tmp_path / "edge",
            env=env,
            stdout=out,
            stderr=out,
        )
    remote_agent.append(agent)

    page = sign_in(browser, server, server.token)
    page.goto(server.url + "/agents")
    state = page.locator("#agents tr[data-agent=edge-1] .status")
    expect(state).to_have_text("ALIVE", timeout=30_000)  # its first heartbeat, polled in
    page.evaluate("window.sameDocument = true")
    page.screenshot(path=shots / "agents.png", full_page=True)

    agent.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    agent.wait()
    expect(state).to_have_text("LOST", timeout=LOST_WITHIN_S * 1000)
    assert time.monotonic() - killed_at <= LOST_WITHIN_S
    assert page.evaluate("window.sameDocument") is True  # the table refreshed itself
    page.screenshot(path=shots / "agents-lost.png", full_page=True)
