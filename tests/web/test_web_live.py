"""The web page, live: changes on disk, Sync now, Home Assistant's birth message, Plex
down and a restart of the service all show on the open page without a reload. Real
Chromium, the real service, a real Mosquitto and the Plex stand-in.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser, expect

from library_files import VARIED_PUBLISHED, SettingsDir
from mosquitto import Mosquitto, connected_client
from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.library import SAVED_ITEMS
from web_support import DEBOUNCE, Running, open_page, start_service

pytestmark = pytest.mark.broker
pytest_plugins = ["web_fixtures"]


MOVED_AT = """([id, category]) => {
    window.notReloaded = true;
    window.movedAt = null;
    const observer = new MutationObserver(() => {
        const row = document.querySelector(`#items li[data-id="${id}"]`);
        if (row && row.dataset.category === category) {
            window.movedAt = Date.now();
            observer.disconnect();
        }
    });
    observer.observe(document.getElementById("items"), { childList: true, subtree: true });
}"""


async def test_relabelling_moves_the_item_on_the_open_page(
        browser: Browser, service: tuple[Running, SettingsDir]) -> None:
    running, lib = service
    page = await open_page(browser, running.url)
    row = page.locator("#items li[data-id='37i9dQZF1DWZeKCadgRdKQ']")  # Deep Focus, "Focus"
    await expect(row).to_have_attribute("data-category", "Focus")
    # The page notes (wall clock, as this process) when the row shows the new category:
    # the assertion's polling would add up to a second of its own.
    await page.evaluate(MOVED_AT, ["37i9dQZF1DWZeKCadgRdKQ", "Jazz"])
    written = time.time()
    lib.relabel("37i9dQZF1DWZeKCadgRdKQ", "Jazz")
    await expect(row).to_have_attribute("data-category", "Jazz", timeout=10_000)
    elapsed = await page.evaluate("window.movedAt") / 1000 - written
    assert elapsed < DEBOUNCE + 1.0, f"the page showed the new category after {elapsed:.2f} s"
    assert await page.evaluate("window.notReloaded") is True
    await expect(page.locator("#categories button[data-category='Jazz']")).to_have_text("Jazz 4")
    await expect(page.locator("#categories button[data-category='Focus']")).to_have_count(0)
    print(f"\nrelabel to page: {elapsed:.2f} s (debounce {DEBOUNCE} s)")


async def test_a_half_written_file_shows_as_a_problem_until_fixed(
        browser: Browser, service: tuple[Running, SettingsDir]) -> None:
    running, lib = service
    page = await open_page(browser, running.url, "health")
    saved = lib.saved_items_path
    good = saved.read_bytes()
    banner = page.locator(f"#problems p[data-file='{SAVED_ITEMS}']")
    # The fixture's file has one malformed entry: a problem of its own, before and after.
    await expect(banner).to_contain_text("1 entry cannot be used", timeout=10_000)
    saved.write_bytes(good[: len(good) // 2])  # as if Spotify-to-Plex were still writing
    await expect(banner).to_contain_text("invalid JSON at line", timeout=10_000)
    state = page.locator(f"#file-rows tr[data-file='{SAVED_ITEMS}'] td").nth(1)
    await expect(state).to_have_text("error")
    # Nothing was removed: the library still shows every item.
    await page.get_by_role("link", name="Library").click()
    await expect(page.locator("#result-count")).to_have_text(
        f"{VARIED_PUBLISHED} of {VARIED_PUBLISHED} items")
    saved.write_bytes(good)
    await expect(banner).not_to_contain_text("invalid JSON", timeout=10_000)
    await expect(banner).to_contain_text("1 entry cannot be used")


def publish_once(broker: Mosquitto, topic: str) -> None:
    with connected_client(broker) as client:
        client.publish(topic, b"online", qos=1).wait_for_publish(5.0)


async def test_sync_now_triggers_a_sync_seen_in_the_history(
        browser: Browser, service: tuple[Running, SettingsDir], clean_broker: Mosquitto) -> None:
    broker = clean_broker
    running, _ = service
    page = await open_page(browser, running.url, "health")
    history = page.locator("#history-rows tr")
    await expect(history).to_have_count(1)
    before = len(running.syncs())
    await page.get_by_role("button", name="Sync now").click()
    await expect(page.locator("#notice")).to_contain_text("requested")
    await expect(history).to_have_count(2, timeout=10_000)
    await expect(history.first.locator(".trigger")).to_have_text("http")
    assert [s.reasons for s in running.syncs()[before:]] == [("http",)]
    # Home Assistant's birth message is counted on the health view.
    await asyncio.to_thread(publish_once, broker,
                            f"{running.service.settings.mqtt.discovery_prefix}/status")
    await expect(page.locator("#h-ha")).to_contain_text("1 birth message seen",
                                                        timeout=10_000)

async def test_plex_down_shows_placeholders_and_says_why(
        browser: Browser, service: tuple[Running, SettingsDir], plex: PlexStandIn) -> None:
    running, _ = service
    await plex.stop()
    page = await open_page(browser, running.url)
    await expect(page.locator("#items li")).to_have_count(VARIED_PUBLISHED)  # none hidden
    widths = await page.eval_on_selector_all(
        "#items img", "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth)))")
    assert set(widths) == {240}  # the placeholder, for every item
    await page.get_by_role("link", name="Health").click()
    await page.get_by_role("button", name="Sync now").click()  # refreshes the health view
    await expect(page.locator("#h-plex-error")).to_contain_text("cannot be reached",
                                                                timeout=10_000)


async def test_the_page_reconnects_when_the_service_restarts(
        browser: Browser, service: tuple[Running, SettingsDir], clean_broker: Mosquitto) -> None:
    running, lib = service
    page = await open_page(browser, running.url)
    await page.evaluate("window.notReloaded = true")
    mqtt = running.service.settings.mqtt
    port, prefixes = running.port, (mqtt.topic_prefix, mqtt.discovery_prefix)
    await running.stop()
    await expect(page.locator("#live")).to_have_text("Reconnecting…", timeout=10_000)
    again = await start_service(clean_broker, lib.root, port=port, prefixes=prefixes)
    try:
        await expect(page.locator("#live")).to_have_text("Live", timeout=10_000)
        row = page.locator("#items li[data-id='37i9dQZF1DWZeKCadgRdKQ']")
        lib.relabel("37i9dQZF1DWZeKCadgRdKQ", "Sleep")
        await expect(row).to_have_attribute("data-category", "Sleep", timeout=10_000)
        assert await page.evaluate("window.notReloaded") is True
    finally:
        await again.stop()
