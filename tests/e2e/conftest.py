"""A real headless Chromium (Debian's package) against pytest-django's live server."""

import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the
# tests make around it are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("IAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(autouse=True)
def _seeded_groups(request):
    """Browser tests run in real transactions, and the database is emptied
    after each one; put back what the seed migration gives every install."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("seed_groups")


class App:
    """An OAuth client app's side of the redirect: a real HTTP server on loopback that
    records the callback URLs the browser is sent to."""

    def __init__(self):
        self.urls: list[str] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/callback"):  # not the browser's favicon
                    app.urls.append(f"{app.callback_base}{self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"app callback")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.callback_base = f"http://127.0.0.1:{self.server.server_port}"
        self.callback = self.callback_base + "/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self, page) -> str:
        page.wait_for_url(lambda url: url.startswith(self.callback))
        return self.urls[-1]


@pytest.fixture
def app():
    """The app of an authorization-code client (its redirect URI: `app.callback`)."""
    app = App()
    yield app
    app.server.shutdown()
