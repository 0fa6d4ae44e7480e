"""The API's browsable documentation (/api/v1/docs, Swagger UI from npm) in a real browser:
reached from the start page, it renders the operations of the OpenAPI document, with their
scopes, under the site's Content-Security-Policy with no console error."""

import pytest
from playwright.sync_api import expect

from .conftest import COUNTER_PC

pytestmark = pytest.mark.browser


def test_the_docs_page_renders_every_operation_without_errors(open_tab, network, screenshot_dir):
    tab = open_tab(COUNTER_PC, locale="en-US")
    tab.goto("/?lang=en")
    tab.page.get_by_test_id("api-docs-link").click()
    page = tab.page
    expect(page).to_have_url(tab.base_url + "/api/v1/docs")
    expect(page.get_by_role("heading", name="API documentation", exact=True)).to_be_visible()
    # Swagger UI drew the document: its title, the tags and one block per operation
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("queue_app API")
    spec = tab.context.request.get(tab.base_url + "/api/v1/openapi.json").json()
    operations = sum(
        1
        for item in spec["paths"].values()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )
    expect(page.locator(".opblock")).to_have_count(operations)
    visits = page.locator(".opblock").filter(
        has=page.locator('[data-path="/api/v1/exports/visits.csv"]')
    )
    expect(visits).to_have_count(1)
    # an operation opened shows its scope
    visits.locator(".opblock-summary-control").click()
    expect(visits).to_contain_text("exports:read")
    page.screenshot(path=screenshot_dir / "api-docs.png", full_page=False)
    assert tab.problems == []


def test_the_docs_page_in_indonesian_renders_too(open_tab, network):
    tab = open_tab(COUNTER_PC, locale="id-ID")
    tab.goto("/api/v1/docs")
    expect(tab.page.locator("html")).to_have_attribute("lang", "id")
    expect(tab.page.get_by_role("link", name="Masuk")).to_be_visible()  # the site's own bar
    expect(tab.page.locator(".opblock").first).to_be_visible()
    assert tab.problems == []
