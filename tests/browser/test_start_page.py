"""The start page in a real browser (Debian's Chromium), at phone size (390x844) and at the
size of a counter PC (1366x768), in Bahasa Indonesia and English.

Each test also checks what a person would notice: nothing overflows sideways on a phone, the
console stays free of errors and every request succeeds. Screenshots go to `SCREENSHOT_DIR`.
"""

import re

import pytest
from playwright.sync_api import expect

from .conftest import SIZES

pytestmark = pytest.mark.browser

TEXT = {
    "id": {
        "h1": "Cabang",
        "title": "Cabang · queue_app",
        "lead": "Antrean, janji temu, dan umpan balik nasabah untuk setiap cabang di jaringan.",
        "summary": "2 dari 3 cabang sedang buka",
        "open": "Buka sekarang",
        "closed": "Tutup",
        "local_time": "Waktu setempat",
        "hours": "Jam buka hari ini",
        "closed_today": "Tutup hari ini",
        "all_day": "Buka 24 jam",
        "zone": "Zona waktu",
        "counts_3": "3 layanan · 3 loket",
        "counts_1": "1 layanan · 1 loket",
        "services_link": "Layanan (API)",
        "footer": "Untuk kios, ponsel, dan sistem lain",
        "skip": "Langsung ke konten utama",
    },
    "en": {
        "h1": "Branches",
        "title": "Branches · queue_app",
        "lead": "Queues, appointments and customer feedback for every branch of the network.",
        "summary": "2 of 3 branches are open now",
        "open": "Open now",
        "closed": "Closed now",
        "local_time": "Local time",
        "hours": "Hours today",
        "closed_today": "Closed today",
        "all_day": "Open 24 hours",
        "zone": "Time zone",
        "counts_3": "3 services · 3 counters",
        "counts_1": "1 service · 1 counter",
        "services_link": "Services (API)",
        "footer": "For kiosks, phones and other systems",
        "skip": "Skip to content",
    },
}
# words of one language that must not show on the page in the other
FOREIGN = {
    "id": ["Branches", "Open now", "Closed", "services", "counters", "Local time"],
    "en": ["Cabang", "Buka", "Tutup", "layanan", "loket", "Waktu setempat"],
}

OVERFLOWING = """() => {
  const width = window.innerWidth;
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
}"""


def assert_no_horizontal_overflow(page):
    scroll_width, inner_width = page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, (
        f"page is {scroll_width}px wide in a {inner_width}px window; "
        f"sticking out: {page.evaluate(OVERFLOWING)}"
    )


def assert_page_in(page, lang, network):
    text = TEXT[lang]
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page).to_have_title(text["title"])
    expect(page.get_by_role("heading", level=1)).to_have_text(text["h1"])
    expect(page.locator(".lead")).to_have_text(text["lead"])
    expect(page.locator(".summary")).to_have_text(text["summary"])
    expect(page.get_by_role("navigation")).to_have_attribute("aria-label", re.compile(r"\w"))
    current = {"id": "Bahasa Indonesia", "en": "English"}[lang]
    expect(page.locator(".lang a[aria-current]")).to_have_text(current)

    cards = page.locator("li.branch")
    expect(cards).to_have_count(len(network.open) + len(network.closed))
    codes = cards.locator(".code").all_inner_texts()
    assert codes == sorted(network.open + network.closed)
    for code in network.open + network.closed:
        card = page.locator(f'li.branch[data-code="{code}"]')
        expect(card.locator(".code")).to_be_visible()
        expect(card.get_by_role("heading", level=2)).to_have_text(network.names[code])
        status = card.locator(".status")
        expect(status).to_be_visible()
        if code in network.open:
            expect(status).to_have_text(text["open"])
            expect(status).to_have_class(re.compile(r"\bopen\b"))
            expect(card.locator("dd")).to_contain_text([text["all_day"]])
        else:
            expect(status).to_have_text(text["closed"])
            expect(status).to_have_class(re.compile(r"\bclosed\b"))
            expect(card.locator("dd")).to_contain_text([text["closed_today"]])
        for label in ("local_time", "hours", "zone"):
            expect(card.locator("dt")).to_contain_text([text[label]])
        expect(card.get_by_role("link", name=text["services_link"])).to_be_visible()
    expect(page.locator('li.branch[data-code="JKT01"] .counts')).to_have_text(text["counts_3"])
    expect(page.locator('li.branch[data-code="MKS01"] .counts')).to_have_text(text["counts_1"])
    expect(page.locator('li.branch[data-code="JKT01"]')).to_contain_text("Asia/Jakarta (UTC+7)")
    expect(page.locator('li.branch[data-code="MKS01"]')).to_contain_text("Asia/Makassar (UTC+8)")
    expect(page.locator('li.branch[data-code="MNL01"]')).to_contain_text("Asia/Manila (UTC+8)")
    for code in network.inactive:
        expect(page.locator(f'li.branch[data-code="{code}"]')).to_have_count(0)
    expect(page.locator("footer")).to_contain_text(text["footer"])

    body = page.locator("body").inner_text()
    for word in FOREIGN[lang]:
        assert word not in body, f"{word!r} on the {lang} page"


@pytest.mark.parametrize("size", SIZES)
def test_start_page_is_in_indonesian_by_default(open_tab, network, screenshot_dir, size):
    tab = open_tab(SIZES[size], locale="id-ID")
    tab.goto("/")
    assert_page_in(tab.page, "id", network)
    assert_no_horizontal_overflow(tab.page)
    tab.page.screenshot(path=screenshot_dir / f"start-{size}-id.png", full_page=True)
    assert tab.problems == []


@pytest.mark.parametrize("size", SIZES)
def test_clicking_english_switches_the_page_and_it_stays_english(
    open_tab, network, screenshot_dir, size
):
    tab = open_tab(SIZES[size], locale="id-ID")
    page = tab.page
    tab.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "id")

    page.get_by_role("link", name="English").click()
    page.wait_for_url(tab.base_url + "/")
    assert_page_in(page, "en", network)
    assert_no_horizontal_overflow(page)
    page.screenshot(path=screenshot_dir / f"start-{size}-en.png", full_page=True)

    page.reload()
    assert_page_in(page, "en", network)
    tab.goto("/")  # a new visit in the same browser session
    assert_page_in(page, "en", network)

    page.get_by_role("link", name="Bahasa Indonesia").click()
    page.wait_for_url(tab.base_url + "/")
    assert_page_in(page, "id", network)
    page.reload()
    assert_page_in(page, "id", network)
    assert tab.problems == []


def test_a_browser_set_to_english_gets_english(open_tab, network):
    tab = open_tab(SIZES["phone"], locale="en-US")
    tab.goto("/")
    assert_page_in(tab.page, "en", network)
    assert tab.problems == []


def test_a_browser_in_another_language_gets_indonesian(open_tab, network):
    tab = open_tab(SIZES["phone"], locale="ja-JP")
    tab.goto("/")
    assert_page_in(tab.page, "id", network)
    assert tab.problems == []


def test_the_lang_parameter_switches_and_sticks(open_tab, network):
    tab = open_tab(SIZES["pc"], locale="id-ID")
    tab.goto("/?lang=en")
    assert_page_in(tab.page, "en", network)
    tab.goto("/")
    assert_page_in(tab.page, "en", network)
    assert tab.problems == []


@pytest.mark.parametrize("size", SIZES)
def test_keyboard_users_can_skip_to_the_content_and_see_the_focus(
    open_tab, network, screenshot_dir, size
):
    tab = open_tab(SIZES[size])
    page = tab.page
    tab.goto("/")
    skip = page.get_by_role("link", name=TEXT["id"]["skip"])
    expect(skip).not_to_be_in_viewport()  # hidden until it gets the focus
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.screenshot(path=screenshot_dir / f"focus-{size}-skip-link.png")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    focused = page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
                   return [e.tagName, e.closest('li.branch') !== null,
                           s.outlineStyle, parseFloat(s.outlineWidth)]; }"""
    )
    tag, in_card, outline_style, outline_width = focused
    assert tag == "A" and in_card, focused
    assert outline_style != "none" and outline_width >= 2, f"focus not visible: {focused}"
    page.screenshot(path=screenshot_dir / f"focus-{size}-card-link.png")
    assert tab.problems == []


CONTRAST = """(selector) => {
  const rgb = c => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll(selector)].map(e => {
    const a = lum(rgb(getComputedStyle(e).color)), b = lum(background(e));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}"""


CONTRASTED = [
    "h1",
    ".lead",
    ".summary",
    ".code",
    ".status.open",
    ".status.closed",
    ".branch h2",
    ".address",
    ".facts dt",
    ".facts dd",
    ".counts",
    ".links a",
    ".lang a",
    ".lang a[aria-current]",
    ".foot h2",
    ".foot a",
]


def test_text_contrast_is_at_least_4_5_to_1(open_tab, network):
    tab = open_tab(SIZES["pc"])
    tab.goto("/")
    low = {}
    for selector in CONTRASTED:
        ratios = tab.page.evaluate(CONTRAST, selector)
        assert ratios, f"nothing matches {selector}"
        if min(ratios) < 4.5:
            low[selector] = round(min(ratios), 2)
    assert low == {}, f"contrast below 4.5:1: {low}"


def test_every_link_on_the_page_works(open_tab, network):
    tab = open_tab(SIZES["pc"])
    tab.goto("/")
    hrefs = tab.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    targets = sorted({h.split("#")[0] for h in hrefs})
    assert len(targets) >= 2 + 2 * 3  # two languages, two API links per branch, footer
    for url in targets:
        assert url.startswith(tab.base_url), url
        response = tab.context.request.get(url, max_redirects=2)
        assert response.status == 200, f"{url}: HTTP {response.status}"
    services = tab.context.request.get(tab.base_url + "/api/v1/branches/JKT01/services")
    assert [s["code"] for s in services.json()["items"]] == ["teller", "cs", "loans"]
