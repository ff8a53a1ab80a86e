"""End to end: ``examples/flask_eki`` (Eki on the blueprint) under gunicorn on 127.0.0.1, with fake
Graph and Twilio APIs. Signed webhooks go in over HTTP; the replies must leave through the provider
the message came from; status webhooks come back; the log is in the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eki_whatsapp import SQLiteStore
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, twilio_text
from eki_whatsapp.testing.processes import app_env, free_port, gunicorn, wait_for

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "flask_eki"
APP_SECRET = "e2e-flask-secret"
VERIFY = "e2e-flask-verify"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FakeGraphAPI, FakeTwilioAPI, Path]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook/whatsapp/"
    log = tmp_path / "log.sqlite3"
    with (
        FakeGraphAPI(app_secret=APP_SECRET, webhook_url=url) as graph,
        FakeTwilioAPI(webhook_url=url) as twilio,
    ):
        values = {
            "WHATSAPP_PROVIDER": "dual",
            "WHATSAPP_STORE_URL": f"sqlite:///{log}",
            "META_VERIFY_TOKEN": VERIFY,
            "LOG_LEVEL": "WARNING",
            **graph.env(),
            **twilio.env(),
        }
        unset = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WHATSAPP_WEBHOOK_URL", "WHATSAPP_INLINE_HANDLERS")
        env = app_env(EXAMPLE, values, unset=unset)
        with gunicorn("app:create_app()", url, env=env, cwd=tmp_path, verify_token=VERIFY, workers=1):
            yield url, graph, twilio, log


def test_replies_leave_through_the_right_provider_and_everything_is_logged(
    served: tuple[str, FakeGraphAPI, FakeTwilioAPI, Path],
) -> None:
    url, graph, twilio, log = served
    meta_in = meta_text("ver cursos", sender="34600111222")
    twilio_in = twilio_text("ver cursos", sender="+5511987654321")

    assert meta_in.post(url, secret=APP_SECRET).status_code == 200
    response = twilio_in.post(url.rstrip("/"), secret=twilio.auth_token)  # no trailing slash: no redirect
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert twilio_in.post(url.rstrip("/"), secret=twilio.auth_token).status_code == 200  # a retry
    assert twilio_text("forged").post(url, secret="wrong-token").status_code == 403

    wait_for(lambda: len(graph.sent) >= 1 and len(twilio.sent) >= 1, "both replies")
    assert graph.flush() and twilio.flush()
    assert [m.to for m in graph.sent] == ["34600111222"]
    assert [m.to.lstrip("+") for m in twilio.sent] == ["5511987654321"]
    assert all("Python" in (m.text or "") for m in graph.sent + twilio.sent)
    assert all(d.ok for d in graph.webhooks + twilio.webhooks)

    expected_out = {("meta", graph.sent[0].id): "read", ("twilio", twilio.sent[0].id): "read"}
    store = SQLiteStore(log)
    try:
        # The handler writes its outbound row after the provider answered; statuses may be faster.
        wait_for(
            lambda: (
                {(r.provider, r.message_id): r.status for r in store.list_log(direction="out")}
                == expected_out
            ),
            "log rows",
        )
        inbound = {(r.provider, r.message_id) for r in store.list_log(direction="in")}
    finally:
        store.close()
    assert inbound == {("meta", meta_in.message_id), ("twilio", twilio_in.message_id)}
