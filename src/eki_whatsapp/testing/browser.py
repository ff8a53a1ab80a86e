"""A real browser for console tests: Debian's Chromium driven by Playwright's Python package.

No browser is downloaded at test time: the system Chromium (``apt-get install chromium``) is the
executable. Without it (or without the ``playwright`` package) a test skips with the reason, and
fails instead under ``EKI_REQUIRE_SERVICES=1`` (CI)::

    from eki_whatsapp.testing.browser import chromium_page

    def test_console(live_url):
        with chromium_page() as page:
            page.goto(live_url)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .services import _missing, require_executable

__all__ = ["CHROMIUM_ARGS", "chromium_page"]

#: Headless, no sandbox (containers run as root), nothing fetched in the background.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--mute-audio",
)


@contextmanager
def chromium_page(
    *,
    viewport: Mapping[str, int] | None = None,
    http_credentials: Mapping[str, str] | None = None,
    locale: str = "en-US",
) -> Iterator[Any]:
    """A Playwright page in the system Chromium (1280 x 900 by default), closed afterwards."""
    executable = require_executable(
        "Chromium", "chromium", "chromium-browser", hint="apt-get install -y chromium (see .ci/run)"
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed: pip install -e '.[dev]'")
        raise
    size = dict(viewport or {"width": 1280, "height": 900})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(
                viewport=size,  # type: ignore[arg-type]
                http_credentials=dict(http_credentials) if http_credentials else None,  # type: ignore[arg-type]
                locale=locale,
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield page
            context.close()
        finally:
            browser.close()
