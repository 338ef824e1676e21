"""The dashboard's throughput chart, transfer search, re-run button and schedule preview in a
browser (issue 20): Debian's chromium, driven by Playwright, against a real server with its two
local agents. Screenshots go where ``test_dashboard.py`` writes its own."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Browser, expect
from test_dashboard import browser, shots, sign_in  # noqa: F401 (fixtures)

FILES, SIZE = 6, 512 * 1024
# The preview lists ten times (YYYY-MM-DD HH:MM:SS UTC), each the given hours after the last.
HOURS_APART = """hours => {
  const times = [...document.querySelectorAll("#preview li")].map(li => li.textContent);
  const at = times.map(text => parseInt(text.split(" ")[1].slice(0, 2), 10));
  return at.length === 10 && at.slice(1).every((h, i) => (h - at[i] + 24) % 24 === hours);
}"""


def test_the_chart_the_search_and_a_rerun_that_completes_live(
    start_server,
    browser: Browser,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    server = start_server()
    photos = server.cwd / "photos" / "2030"
    photos.mkdir(parents=True)
    for number in range(FILES):
        (photos / f"p{number}.jpg").write_bytes(os.urandom(SIZE))
    (server.cwd / "later.txt").write_text("later")
    # Slowed (each object 2 s) so that the re-run's page opens while it is still moving.
    slowed = ["--overwrite", "always", "--bandwidth", "256K", "--label", "nightly"]
    moved = server.cli_json(
        "submit", "--wait", "--tree", *slowed, "local:photos/2030", "local:copied"
    )
    assert moved["status"] == "COMPLETED"
    later = server.cli_json("submit", "--at", "+1h", "local:later.txt", "local:kept")

    page = sign_in(browser, server, server.token)
    chart = page.locator("svg#throughput")
    expect(chart).to_have_attribute("aria-label", re.compile(r"peak \d+\.\d\d MiB/s .* now "))
    bars = chart.locator("rect.bar")
    expect(bars.first).to_be_visible()
    drawn = sum(int(b.get_attribute("data-bytes") or 0) for b in bars.all())
    assert drawn == FILES * SIZE
    assert chart.locator("title").first.text_content() == chart.get_attribute("aria-label")
    page.screenshot(path=shots / "overview-chart.png", full_page=True)

    page.goto(server.url + "/transfers")
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(2)
    for text in ("nightly", "photos/20"):
        page.fill("input[name=q]", text)
        page.click(".filters button")
        expect(page).to_have_url(re.compile(rf"[?&]q={re.escape(quote(text, safe=''))}(&|$)"))
        expect(rows).to_have_count(1)
        expect(page.locator(f"a[href='/transfers/{moved['id']}']")).to_be_visible()
        expect(page.locator("input[name=q]")).to_have_value(text)
    page.screenshot(path=shots / "transfers-search.png", full_page=True)
    page.fill("input[name=q]", "later.t")
    page.click(".filters button")
    expect(page.locator(f"a[href='/transfers/{later['id']}']")).to_be_visible()
    expect(rows).to_have_count(1)

    page.goto(f"{server.url}/transfers/{moved['id']}")
    expect(page.locator("#status")).to_have_text("COMPLETED")
    page.click("#rerun")
    page.wait_for_url(re.compile(r"/transfers/[0-9a-f-]{36}$"))
    again = page.url.rsplit("/", 1)[1]
    assert again != moved["id"]
    page.evaluate("window.sameDocument = true")
    expect(page.locator("#live")).to_have_attribute("data-final", "no")  # opened unfinished
    expect(page.locator("#status")).to_have_text("COMPLETED", timeout=60_000)
    expect(page.locator("#bar")).to_have_attribute("value", "100")
    expect(page.locator("#moved")).to_have_text("3.0 MiB")  # the run's bytes, not the last tick's
    expect(page.locator("table.objects tbody .status.DONE")).to_have_count(FILES)
    assert page.evaluate("window.sameDocument") is True  # followed live, not reloaded
    page.screenshot(path=shots / "transfer-rerun.png", full_page=True)
    shown = server.api("GET", f"/api/v1/transfers/{again}").json()
    assert (shown["sources"], shown["options"]["labels"]) == (["local:photos/2030"], ["nightly"])
    assert (shown["options"]["overwrite"], shown["options"]["bandwidth"]) == ("always", 256 * 1024)


def test_the_forms_preview_shows_the_next_occurrences_of_an_every_schedule(
    start_server,
    browser: Browser,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    server = start_server("--agents", "0")
    page = sign_in(browser, server, server.token)
    page.goto(server.url + "/transfers/new")
    page.evaluate("window.sameDocument = true")
    preview = page.locator("#preview")
    expect(preview.locator("li")).to_have_count(1)  # direct: now
    page.check("input[name=schedule][value=every]")
    page.select_option("select[name=unit]", "hour")
    interval = page.locator("input[name=interval]")
    page.wait_for_function(HOURS_APART, arg=1)  # every hour
    interval.fill("")
    interval.press_sequentially("2")  # typed: the preview follows the keys, nothing is sent
    page.wait_for_function(HOURS_APART, arg=2)
    interval.fill("")
    interval.press_sequentially("0")
    expect(preview.locator(".error")).to_contain_text("interval")
    interval.fill("3")  # pasted, say: no key pressed
    page.wait_for_function(HOURS_APART, arg=3)
    assert page.evaluate("window.sameDocument") is True  # no reload
    page.screenshot(path=shots / "new-transfer-every.png", full_page=True)


def test_a_refused_button_answers_with_a_page_that_says_why(
    start_server,
    browser: Browser,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    """The storage's grant to her scope is taken back while her transfer's page is open: her
    re-run is refused (403), and she reads why on a page, not a problem document."""
    server = start_server()
    (server.cwd / "mine.txt").write_text("mine")
    server.cli("scope", "set", "lab", "--weight", "1", check=True)
    server.cli("storage", "grant", "local", "--scope", "lab", "--read", "--write", check=True)
    ann = server.cli_json("user", "add", "ann", "--role", "WRITE", "--scope", "lab")
    token = ann["token"]["token"]
    done = json.loads(
        server.cli(
            "submit",
            "--wait",
            "--scope",
            "lab",
            "local:mine.txt",
            "local:kept",
            "--json",
            "--token",
            token,
            check=True,
        ).stdout
    )
    assert done["status"] == "COMPLETED"

    page = sign_in(browser, server, token)
    page.goto(f"{server.url}/transfers/{done['id']}")
    expect(page.locator("#rerun")).to_be_visible()
    server.cli("storage", "ungrant", "local", "--scope", "lab", check=True)
    with page.expect_response(re.compile(r"/rerun$")) as refused:
        page.click("#rerun")
    assert refused.value.status == 403
    expect(page.locator("h1")).to_have_text("Forbidden")
    expect(page.locator("#problem")).to_contain_text("local")
    page.screenshot(path=shots / "refused.png", full_page=True)
    page.click("#back")
    expect(page).to_have_url(f"{server.url}/transfers/{done['id']}")

    api = server.api("POST", f"/api/v1/transfers/{done['id']}/rerun")  # as administrator
    assert api.status_code == 201  # administrators need no grant
