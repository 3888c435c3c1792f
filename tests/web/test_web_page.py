"""The web page in a real browser (Debian's Chromium via Playwright) against the real
service, a real Mosquitto and the Plex stand-in: what it lists, the token, the Plex token,
10,000 items, a phone's width and the keyboard.

Every wait is for a condition on the page or an event of the service, with a deadline.
Screenshots of the views go to a temporary directory (or `WEB_SCREENSHOTS`), printed at
the end of the first test.
"""

# ruff: noqa: S105 - made-up tokens whose absence from the browser is checked

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from library_files import VARIED_PUBLISHED, SettingsDir, big_library
from mosquitto import Mosquitto
from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.library import SAVED_ITEMS
from web_support import (
    NARROW,
    NOT_FOUND_THUMB,
    PLEX_TOKEN,
    WIDE,
    Running,
    Screenshots,
    Seen,
    library_dir,
    open_page,
    start_service,
)

pytestmark = pytest.mark.broker
pytest_plugins = ["web_fixtures"]

API_TOKEN = "page-api-t0ken-for-the-browser"


async def all_rows(page: Page) -> list[dict[str, str]]:
    """Every item row on every page of the list, paging with the Next button."""
    rows: list[dict[str, str]] = []
    while True:
        rows += await page.eval_on_selector_all("#items li", """items => items.map(li => ({
            id: li.dataset.id, category: li.dataset.category,
            name: li.querySelector('.name').textContent,
            entity: li.querySelector('.entity-id').textContent,
            content: li.querySelector('.content-id').textContent,
            img: li.querySelector('img').getAttribute('src'),
            plex: li.querySelector('a') ? li.querySelector('a').href : ''}))""")
        if await page.locator("#next").is_disabled():
            return rows
        await page.locator("#next").click()


async def check_rows(page: Page, running: Running) -> None:
    """Every published item, as the service has it: entity id, playable id, artwork, link."""
    result = running.service.last_result
    assert result is not None
    rows = {row["id"]: row for row in await all_rows(page)}
    topics = Topics(running.service.settings.mqtt.topic_prefix,
                    running.service.settings.mqtt.discovery_prefix)
    assert set(rows) == {e.id for e in result.entities}
    for entity in result.entities:
        row = rows[entity.id]
        assert (row["name"], row["category"]) == (entity.name, entity.category)
        assert row["entity"] == f"sensor.{topics.item_object_id(entity.slug)}"
        assert row["content"] == entity.media_content_id  # whatever the entity publishes
        assert row["img"].startswith(f"/artwork/{entity.plex_key}?v=")
        assert row["plex"].startswith(
            "https://app.plex.tv/desktop/#!/server/standin-machine-0001/")


async def check_filters(page: Page) -> None:
    """Categories with counts; filtering by category, kind and name."""
    jazz = page.locator("#categories button[data-category='Jazz']")
    await expect(jazz).to_have_text("Jazz 3")
    await jazz.click()
    await expect(page.locator("#items li")).to_have_count(3)
    await page.locator("#kind").select_option("spotify-album")
    await expect(page.locator("#items li .name")).to_have_text(["Kind Of Blue"])
    await page.locator("#categories button[data-category='']").click()
    await page.locator("#kind").select_option("")
    await page.locator("#search").fill("road")
    await expect(page.locator("#items li .name")).to_have_text(["Abbey Road", "Road Trip"])
    await page.locator("#search").fill("")
    await expect(page.locator("#items li")).to_have_count(VARIED_PUBLISHED)


async def check_artwork(page: Page, running: Running, plex: PlexStandIn) -> None:
    """A real image from Plex through the service; the placeholder where Plex has none."""
    result = running.service.last_result
    assert result is not None
    images = await page.eval_on_selector_all("#items img", """imgs => Promise.all(imgs.map(
        img => img.decode().then(() => [img.getAttribute('src'), img.naturalWidth])))""")
    widths = {src.split("?")[0]: width for src, width in images}
    missing = next(e for e in result.entities if e.thumb == NOT_FOUND_THUMB)
    assert widths.pop(f"/artwork/{missing.plex_key}") == 240  # the placeholder SVG
    assert set(widths.values()) == {8}  # the stand-in's 8 px PNGs
    assert any("/photo/:/transcode" in p for p in plex.paths())


async def check_copy(page: Page) -> None:
    """The copy button puts the playable id on the clipboard."""
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    first = page.locator("#items li").first
    await first.get_by_role("button").click()
    await expect(first.get_by_role("button")).to_have_text("Copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await first.locator(".content-id").text_content()


async def check_skipped(page: Page) -> None:
    """The labelled album without a Plex match, with its reason and the fix in words; the
    malformed entry under its file."""
    await page.get_by_role("link", name="Skipped").click()
    row = page.locator("#skipped-rows tr[data-id='0ETFjACtuP2ADo6LFhL6HN']")
    await expect(row.locator(".reason")).to_have_text("no Plex album in track_links.json")
    await expect(row.locator(".fix")).to_contain_text("Match this album in Plex")
    saved = page.locator(f".file[data-file='{SAVED_ITEMS}']")
    await expect(saved.locator("summary")).to_have_text("1 malformed entry skipped")
    await expect(saved.locator("li")).to_contain_text(["'id' is missing or not text"])


async def test_the_page_lists_published_and_skipped_items(
        browser: Browser, service: tuple[Running, SettingsDir], plex: PlexStandIn,
        screenshots: Screenshots) -> None:
    running, _ = service
    page = await open_page(browser, running.url)
    await expect(page.locator("#result-count")).to_have_text(
        f"{VARIED_PUBLISHED} of {VARIED_PUBLISHED} items")
    await expect(page.locator("#login")).to_be_hidden()  # no API_TOKEN: no question
    await check_rows(page, running)
    await check_filters(page)
    await check_artwork(page, running, plex)
    await screenshots.take(page, "library")
    await check_copy(page)
    await check_skipped(page)
    await screenshots.take(page, "skipped")
    await page.get_by_role("link", name="Health").click()
    await expect(page.locator("#h-broker")).to_contain_text("Connected")
    await expect(page.locator("#history-rows tr").first.locator(".trigger")).to_have_text("start")
    await screenshots.take(page, "health")
    print(f"\nscreenshots: {screenshots.directory}")

async def test_with_an_api_token_nothing_shows_before_it_is_entered(
        browser: Browser, clean_broker: Mosquitto, tmp_path: Path, plex: PlexStandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lib = library_dir(tmp_path / "settings", plex)
    running = await start_service(clean_broker, lib.root, token=API_TOKEN)
    try:
        context = await browser.new_context(viewport=WIDE)
        page = await context.new_page()
        seen = Seen()
        seen.attach(page)
        await page.goto(running.url)
        await expect(page.locator("#login")).to_be_visible()
        await seen.settle()
        # Nothing of the library, the skipped items or the health is on the page.
        body = await page.locator("body").inner_text()
        assert "Jazz Classics" not in body, body
        assert "Not Yet Matched" not in body, body
        assert await page.locator("#items li, #skipped-rows tr, #file-rows tr").count() == 0
        for view in ("library", "skipped", "health"):
            await expect(page.locator(f"#view-{view}")).to_be_hidden()
        await expect(page.get_by_role("button", name="Sync now")).to_be_hidden()
        assert seen.statuses[f"{running.url}/library"] == 401
        await page.locator("#token").fill("not-the-token")
        await page.locator("#token").press("Enter")
        await expect(page.locator("#login-error")).to_have_text("That token is not right.")
        await page.locator("#token").fill(API_TOKEN)
        await page.get_by_role("button", name="Open").click()
        await expect(page.locator("#live")).to_have_text("Live", timeout=10_000)
        await expect(page.locator("#result-count")).to_have_text(
            f"{VARIED_PUBLISHED} of {VARIED_PUBLISHED} items")
        # Kept for the browser session: a reload asks nothing, and Sync now is accepted.
        await page.reload()
        await expect(page.locator("#live")).to_have_text("Live", timeout=10_000)
        await expect(page.locator("#login")).to_be_hidden()
        await page.get_by_role("button", name="Sync now").click()
        await expect(page.locator("#notice")).to_contain_text("requested")
        await running.until(lambda: any("http" in s.reasons for s in running.syncs()),
                            "the page's sync")
    finally:
        await running.stop()


async def test_no_plex_token_anywhere_the_browser_sees(
        browser: Browser, service: tuple[Running, SettingsDir], plex: PlexStandIn) -> None:
    running, _ = service
    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    seen = Seen()
    seen.attach(page)
    await page.goto(f"{running.url}/#library")
    await expect(page.locator("#live")).to_have_text("Live", timeout=10_000)
    await expect(page.locator("#items li")).to_have_count(VARIED_PUBLISHED)
    await page.eval_on_selector_all("#items img", "imgs => Promise.all(imgs.map(i => i.decode()))")
    for view in ("skipped", "health", "library"):
        await page.get_by_role("link", name=view.capitalize()).click()
        await expect(page.locator(f"#view-{view}")).to_be_visible()
    await page.get_by_role("button", name="Sync now").click()
    await running.until(lambda: any("http" in s.reasons for s in running.syncs()), "a sync")
    await expect(page.locator("#history-rows tr")).to_have_count(2, timeout=10_000)
    await seen.settle()
    assert any("/artwork/" in url for url in seen.urls)
    assert all(s.token_ok for s in plex.log if s.path.startswith("/photo"))  # it was used
    sources = [await page.content(), *seen.urls, *seen.texts,
               json.dumps(await context.cookies()),
               await page.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")]
    assert len(seen.texts) > 20
    for text in sources:
        assert PLEX_TOKEN not in text

async def test_ten_thousand_items_first_render(
        browser: Browser, fresh_mosquitto: Mosquitto, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    lib = big_library(tmp_path / "settings", 10_000)
    lib.write()
    running = await start_service(fresh_mosquitto, lib.root)
    try:
        assert running.syncs()[0].entities == 10_000
        context = await browser.new_context(viewport=WIDE)
        page = await context.new_page()
        await page.goto(running.url)
        await expect(page.locator("#result-count")).to_have_text("10000 of 10000 items",
                                                                 timeout=15_000)
        first = await page.evaluate(
            "performance.getEntriesByName('first-render')[0].startTime")
        await expect(page.locator("#items li")).to_have_count(50)  # one page, not 10k rows
        # Still responsive: a search over 10k names answers at once.
        started = await page.evaluate("performance.now()")
        await page.locator("#search").fill("Playlist 9999")
        await expect(page.locator("#result-count")).to_have_text("1 of 10000 items")
        search = await page.evaluate("performance.now()") - started
        record_property("first_render_ms", round(first))
        print(f"\n10k items: first render {first:.0f} ms after navigation, search {search:.0f} ms")
        assert first < 3000, f"first render took {first:.0f} ms (goal: under 1 s)"
    finally:
        await running.stop()


async def tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"{selector} has the focus but shows no outline"
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


async def test_usable_on_a_phone_and_with_a_keyboard(
        browser: Browser, service: tuple[Running, SettingsDir]) -> None:
    running, _ = service
    context = await browser.new_context(viewport=NARROW, color_scheme="dark")
    page = await context.new_page()
    await page.goto(f"{running.url}/#library")
    await expect(page.locator("#live")).to_have_text("Live", timeout=10_000)
    for view in ("library", "skipped", "health"):
        await page.evaluate("(view) => { location.hash = view; }", view)
        await expect(page.locator(f"#view-{view}")).to_be_visible()
        overflow = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"the {view} view is {overflow} px wider than a phone's screen"
    # With the keyboard only: views, search, category, copy and Sync now.
    await page.evaluate("location.hash = 'library'")
    await page.locator("body").focus()
    await tab_to(page, "a[data-view='skipped']")
    await page.keyboard.press("Enter")
    await expect(page.locator("#view-skipped")).to_be_visible()
    await tab_to(page, "a[data-view='library']")
    await page.keyboard.press("Enter")
    await tab_to(page, "#categories button[data-category='Rock']")
    await page.keyboard.press("Space")
    await expect(page.locator("#items li")).to_have_count(3)
    await tab_to(page, "#search")
    await page.keyboard.type("dark")
    await expect(page.locator("#items li .name")).to_have_text(["The Dark Side of the Moon"])
    await tab_to(page, "#items li button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#items li button")).to_have_text("Copied")
    await tab_to(page, "#sync-now")
    await page.keyboard.press("Enter")
    await expect(page.locator("#notice")).to_contain_text("requested")
