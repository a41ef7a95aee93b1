"""Fixtures for driving the Car Creation page in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

from carstudio.config import Settings
from carstudio.web.app import create_app
from tests.browser.batch_page import CheckAccessibility, NewPage, ServeApp
from tests.serving import servers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
# axe-core 4.14.1, MPL-2.0; see vendor/README.md.
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.map((node) => node.target.join(" ")),
  }));
}"""


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM}; install it "
            "(apt-get install chromium) or deselect them with -m 'not browser'."
        )
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield chromium
    finally:
        chromium.close()


# Whatever the page's own Content Security Policy blocks (an inline style, a script from
# elsewhere) is recorded, so a test fails instead of a feature silently missing.
RECORD_POLICY_VIOLATIONS = """
window.policyViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.policyViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def _local_only(route: Route) -> None:
    # The page must work offline: anything that is not the app under test is refused.
    if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """A factory of fresh pages, each in a context of its own (its own cookies, so its own
    signed-in user); uncaught script errors and Content Security Policy violations on any of
    them fail the test."""
    contexts: list[BrowserContext] = []
    script_errors: list[str] = []

    def make() -> Page:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        contexts.append(context)
        context.route("**/*", _local_only)
        context.add_init_script(RECORD_POLICY_VIOLATIONS)
        made = context.new_page()
        made.on("pageerror", lambda error: script_errors.append(str(error)))
        return made

    violations: list[str] = []
    try:
        yield make
        for context in contexts:
            for made in context.pages:
                if not made.is_closed() and made.url.startswith("http"):
                    violations += made.evaluate("window.policyViolations || []")
    finally:
        for context in contexts:
            context.close()
    if script_errors:
        pytest.fail("The page raised script errors: " + "; ".join(script_errors))
    if violations:
        pytest.fail("The page broke its Content Security Policy: " + "; ".join(violations))


@pytest.fixture
def page(new_page: NewPage) -> Page:
    """A fresh page in its own context, watched as every `new_page` is."""
    return new_page()


@pytest.fixture
def check_accessibility() -> CheckAccessibility:
    """`check_accessibility(page, screen)` runs axe-core on the page as it is now shown and
    fails the test listing every violation (rule, impact, help and the elements concerned)."""

    def check(page: Page, screen: str) -> None:
        if not page.evaluate("typeof window.axe === 'object'"):
            # Evaluated by the browser's debugger protocol, which the page's Content Security
            # Policy (no inline script) does not apply to; a <script> tag would be refused.
            page.evaluate(AXE.read_text(encoding="utf-8"))
        violations = page.evaluate(RUN_AXE)
        if violations:
            lines = [
                f"{v['id']} ({v['impact']}): {v['help']}\n"
                + "\n".join(f"    {target}" for target in v["nodes"])
                for v in violations
            ]
            pytest.fail(
                f"axe-core found {len(violations)} accessibility violation(s) on {screen}:\n"
                + "\n".join(lines),
                pytrace=False,
            )

    return check


@pytest.fixture
def serve_app() -> Iterator[ServeApp]:
    """A factory: `serve_app(settings)` runs Car Studio on a free local port, returns its URL."""
    with servers() as running:
        yield lambda settings: running.start(create_app(settings))


@pytest.fixture
def preview_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", provider="preview", _env_file=None)
