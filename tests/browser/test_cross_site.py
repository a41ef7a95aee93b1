"""A page from another origin attacks Car Studio in a real browser: it gets nowhere."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, Response

from tests.browser.batch_page import MakeSettings, ServeApp
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

ATTACK_PAGE = """<!doctype html>
<html><head><title>Free car wallpapers</title></head><body>
<h1>Free car wallpapers</h1>
<iframe id="framed" src="{target}/" width="600" height="400"></iframe>
<form id="forged" method="POST" action="{target}/api/car-image" enctype="text/plain"
      target="sink">
  <input type="hidden" name='{{"make":"Kia","model":"EV6","x":"' value='"}}'>
</form>
<iframe name="sink"></iframe>
<script>
  const target = "{target}";
  window.attacks = (async () => {{
    const data = new FormData();
    const csv = "make,model\\n" + Array.from({{length: 50}}, (_, n) => `Kia,EV${{n}}`).join("\\n");
    data.append("file", new Blob([csv], {{type: "text/csv"}}), "cars.csv");
    const tried = [];
    for (const path of ["/api/car-batch", "/api/car-batch/validate"]) {{
      await fetch(target + path, {{method: "POST", mode: "no-cors", body: data}});
      tried.push(path);
    }}
    await fetch(target + "/api/car-image", {{
      method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
      body: JSON.stringify({{make: "Kia"}}),
    }});
    tried.push("/api/car-image");
    document.getElementById("forged").submit();
    return tried;
  }})();
</script>
</body></html>
"""


@pytest.fixture
def attacker_site() -> Iterator[Callable[[str], str]]:
    """Serve the attack page aimed at `target` from another origin: 127.0.0.2, its own port."""
    servers: list[ThreadingHTTPServer] = []

    def serve(target: str) -> str:
        page = ATTACK_PAGE.format(target=target).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.2:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_another_sites_page_cannot_start_batches_post_forms_or_frame_car_studio(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    attacker_site: Callable[[str], str],
) -> None:
    target = serve_app(make_settings(fake=fake_replicate))
    attack = attacker_site(target)
    page.route(re.compile(r"^http://127\.0\.0\.2:\d+/"), lambda route: route.continue_())
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response))

    page.goto(attack)
    assert page.evaluate("window.attacks") == [
        "/api/car-batch",
        "/api/car-batch/validate",
        "/api/car-image",
    ]
    page.wait_for_timeout(300)  # the form's navigation in its frame
    forged = [r for r in answers if r.request.method == "POST" and r.url.startswith(target)]
    assert len(forged) == 4, [r.url for r in forged]
    assert {r.status for r in forged} == {403}, [(r.url, r.status) for r in forged]

    # Framed, Car Studio's page arrives but does not render: frame-ancestors 'none'.
    page_answer = next(r for r in answers if r.url == f"{target}/")
    assert page_answer.status == 200
    assert "frame-ancestors 'none'" in page_answer.headers["content-security-policy"]
    page.wait_for_timeout(200)
    assert page.frame_locator("#framed").locator("car-form").count() == 0

    assert fake_replicate.creation_count() == 0
    assert fake_replicate.requests == []
