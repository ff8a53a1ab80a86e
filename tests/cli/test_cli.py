"""The eki-whatsapp command line, run in-process against the local fakes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, Settings, SQLiteStore
from eki_whatsapp.cli import main
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, serve_bot

APP_SECRET = "cli-app-secret"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGraphAPI, FakeTwilioAPI]]:
    with (
        FakeGraphAPI(app_secret=APP_SECRET, auto_status=()) as graph,
        FakeTwilioAPI(auto_status=()) as twilio,
    ):
        yield graph, twilio


@pytest.fixture
def env_file(tmp_path: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]) -> Path:
    graph, twilio = fakes
    values = {
        "WHATSAPP_PROVIDER": "dual",
        "META_VERIFY_TOKEN": "verify-me",
        "WHATSAPP_STORE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
        **graph.env(),
        **twilio.env(),
    }
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_demo_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    code, text = run("demo", "--store", str(db))
    assert code == 0, text
    assert "Cost report" in text and "failover:ProviderDown" in text
    store = SQLiteStore(db)
    rows = list(reversed(store.list_log(limit=500)))
    inbound = [r for r in rows if r.direction == "in"]
    outbound = [r for r in rows if r.direction == "out"]
    assert {r.provider for r in inbound} == {"meta", "twilio"}
    assert len(inbound) == 7
    # real buttons on Twilio (quick-reply content), and the tap came back as a typed reply
    (buttons,) = [r for r in outbound if r.type == "buttons"]
    assert buttons.provider == "twilio" and buttons.extra.get("rendering") == "content:created"
    tap = inbound[-1]
    assert (tap.provider, tap.type) == ("twilio", "interactive") and "[taps button] Quiz de Python" in text
    assert {r.type for r in inbound} >= {"text", "interactive", "image"}
    # every user message got an answer on its own channel
    for message in inbound:
        replies = [r for r in outbound if r.user == message.user and r.reason == "reply-channel"]
        assert replies and {r.provider for r in replies} == {message.provider}
    # statuses came back through the webhook and updated the rows
    replies = [r for r in outbound if r.reason == "reply-channel"]
    assert all(r.status == "read" for r in replies)
    assert all(
        [s.status for s in store.statuses(r.provider, r.message_id or "")] == ["sent", "delivered", "read"]
        for r in replies
    )
    # the outage: Meta failed, the reminder went out through Twilio
    # (the student wrote only to the Meta number: the reason says the failover used another number)
    failover = [r for r in outbound if (r.reason or "").startswith("failover:ProviderDown")]
    assert len(failover) == 1 and failover[0].provider == "twilio" and failover[0].type == "template"
    failed_meta = [r for r in outbound if r.provider == "meta" and r.status == "failed"]
    assert len(failed_meta) == 1 and failed_meta[0].attempts > 1
    assert store.ledger(), "the cost ledger was fed"
    store.close()


def test_costs_after_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "demo.sqlite3"
    assert run("demo", "--store", str(db))[0] == 0
    code, text = run("costs", "--store", f"sqlite:///{db}", "--json")
    assert code == 0
    report = json.loads(text)
    providers = {line["provider"] for line in report["lines"]}
    assert providers == {"meta", "twilio"}
    assert sum(line["messages"] for line in report["lines"]) >= 8
    code, text = run("costs", "--store", f"sqlite:///{db}")
    assert code == 0 and "total" in text


def user_wrote(env_file: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI], provider: str, user: str) -> None:
    """The user writes first (opens the 24-hour window), through the real webhook."""
    from eki_whatsapp.testing import meta_text, twilio_text

    _graph, twilio = fakes
    bot = Bot(Settings(_env_file=env_file), inline=True)  # type: ignore[call-arg]
    if provider == "meta":
        response = bot.handle(meta_text("hola", sender=user).request(secret=APP_SECRET))
    else:
        response = bot.handle(twilio_text("hola", sender=user).request(secret=twilio.auth_token))
    assert response.status == 200
    bot.close()


def test_send_text_and_provider_failure(env_file: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]) -> None:
    graph, twilio = fakes
    user_wrote(env_file, fakes, "twilio", "5511987654321")
    user_wrote(env_file, fakes, "meta", "5215512345678")
    code, text = run(
        "send",
        "--env-file",
        str(env_file),
        "--to",
        "+5511987654321",
        "--text",
        "Hola",
        "--provider",
        "twilio",
    )
    assert code == 0, text
    assert "sent via twilio" in text
    assert twilio.sent[-1].text == "Hola" and twilio.sent[-1].to.lstrip("+") == "5511987654321"
    graph.fail_next(131026, http_status=400, times=None)
    code, text = run(
        "send", "--env-file", str(env_file), "--to", "5215512345678", "--text", "x", "--provider", "meta"
    )
    assert code == 1 and "131026" in text


def test_send_template_via_content_sid(env_file: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]) -> None:
    _, twilio = fakes
    code, text = run(
        "send", "--env-file", str(env_file), "--to", "5511987654321", "--template", "recordatorio",
        "--content-sid", "HX" + "a" * 32, "--var", "Ana", "--var", "Python", "--provider", "twilio",
        "--category", "utility",
    )  # fmt: skip
    assert code == 0, text
    sent = twilio.sent[-1]
    assert sent.body["ContentSid"] == "HX" + "a" * 32
    assert json.loads(sent.body["ContentVariables"]) == {"1": "Ana", "2": "Python"}


def test_configuration_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.env"
    bad.write_text("WHATSAPP_PROVIDER=meta\n")
    code, text = run("send", "--env-file", str(bad), "--to", "1", "--text", "x")
    assert code == 2 and "META_WHATSAPP_TOKEN" in text
    bad.write_text("WHATSAPP_PROVIDER=telegram\n")
    assert run("doctor", "--env-file", str(bad))[0] == 2
    assert run("no-such-command")[0] == 2


def test_simulate_against_a_running_app(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, whatsapp_provider="twilio", twilio_account_sid="AC" + "1" * 32, twilio_auth_token="tok",
        twilio_whatsapp_number="+14155238886", meta_app_secret=APP_SECRET, whatsapp_store_url="memory://",
    )  # fmt: skip
    bot = Bot(settings, providers={}, inline=True)
    with serve_bot(bot) as server:
        code, text = run("simulate", server.url, "--provider", "twilio", "--text", "Hola!", "--secret", "tok")
        assert code == 0, text
        code, _ = run(
            "simulate",
            server.url,
            "--provider",
            "meta",
            "--kind",
            "button",
            "--text",
            "Sí",
            "--secret",
            APP_SECRET,
        )
        assert code == 0
        code, text = run("simulate", server.url, "--provider", "twilio", "--secret", "wrong")
        assert code == 1 and "403" in text
    rows = bot.store.list_log()
    assert sorted((r.provider, r.text) for r in rows) == [("meta", "Sí"), ("twilio", "Hola!")]
    bot.close()


def test_simulate_unreachable_url_exits_1() -> None:
    code, text = run("simulate", "http://127.0.0.1:9/webhook", "--secret", "x")
    assert code == 1 and "cannot reach" in text


def test_chat_on_both_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("ver cursos\n/twilio\nquiz de python\n/quit\n"))
    code, text = run("chat", "--name", "Ana")
    assert code == 0, text
    assert "Eki via meta" in text and "Eki via twilio" in text
    assert "Python desde cero" in text


def test_serve_sandbox_answers_meta_challenge() -> None:
    import threading

    import httpx

    result: dict[str, Any] = {}

    def serve() -> None:
        result["code"] = run("serve", "--sandbox", "--port", "0", "--duration", "1.5")

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(10)
    code, text = result["code"]
    assert code == 0 and "Webhook listening on http://127.0.0.1:" in text
    del httpx


def test_version_and_help() -> None:
    import contextlib

    for argv, expected in ((["--version"], "eki-whatsapp 0."), (["--help"], "simulate")):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(argv)
        assert code == 0 and expected in out.getvalue()


# --- doctor against the fakes --------------------------------------------------------------------------
def doctor_env(tmp_path: Path, graph: FakeGraphAPI, twilio: FakeTwilioAPI, **extra: str) -> Path:
    values = {
        "WHATSAPP_PROVIDER": "dual",
        "META_VERIFY_TOKEN": "verify-me",
        "WHATSAPP_WEBHOOK_URL": "https://bot.example.com/webhook/whatsapp/",
        **graph.env(),
        **twilio.env(),
        **extra,
    }
    path = tmp_path / "doctor.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_doctor_online_ok(tmp_path: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]) -> None:
    graph, twilio = fakes
    code, text = run("doctor", "--online", "--env-file", str(doctor_env(tmp_path, graph, twilio)))
    assert code == 0, text
    assert (
        "✔ Meta phone number" in text and "✔ Twilio account" in text and "✔ Meta webhook subscription" in text
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("token_expired", "has expired"),
        ("phone_unverified", "is not verified"),
        ("not_registered", "not registered with the Cloud API"),
        ("not_subscribed", "no app is subscribed"),
        ("twilio_token", "were refused"),
        ("twilio_suspended", "the account is suspended"),
        ("wrong_token", "META_WHATSAPP_TOKEN was refused"),
    ],
)
def test_doctor_explains_each_failure(
    tmp_path: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI], breakage: str, expected: str
) -> None:
    graph, twilio = fakes
    extra: dict[str, str] = {}
    if breakage == "token_expired":
        graph.token_expired = True
    elif breakage == "phone_unverified":
        graph.phone_verified = False
    elif breakage == "not_registered":
        graph.platform_type = "NOT_APPLICABLE"
    elif breakage == "not_subscribed":
        graph.app_subscribed = False
    elif breakage == "twilio_token":
        extra["TWILIO_AUTH_TOKEN"] = "not-the-token"
    elif breakage == "twilio_suspended":
        twilio.account_status = "suspended"
    elif breakage == "wrong_token":
        extra["META_WHATSAPP_TOKEN"] = "EAAG-wrong"
    code, text = run("doctor", "--online", "--env-file", str(doctor_env(tmp_path, graph, twilio, **extra)))
    assert code == 1
    assert expected in text
    assert "→" in text  # every failure says what to do
    assert "not-the-token" not in text and "EAAG-wrong" not in text


def test_doctor_webhook_verify_token_mismatch(
    tmp_path: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]
) -> None:
    graph, twilio = fakes
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, whatsapp_provider="meta", meta_whatsapp_token="t", meta_phone_number_id="1",
        meta_verify_token="the-app-token", whatsapp_store_url="memory://",
    )  # fmt: skip
    bot = Bot(settings, providers={})
    with serve_bot(bot) as server:
        env = doctor_env(
            tmp_path, graph, twilio, WHATSAPP_WEBHOOK_URL=server.url, META_VERIFY_TOKEN="another-token"
        )
        code, text = run("doctor", "--webhook", "--env-file", str(env))
        assert code == 1 and "refused the verify token" in text
        env = doctor_env(
            tmp_path, graph, twilio, WHATSAPP_WEBHOOK_URL=server.url, META_VERIFY_TOKEN="the-app-token"
        )
        code, text = run("doctor", "--webhook", "--env-file", str(env))
        assert "✔ webhook verification" in text
    bot.close()


def test_pending_lists_unhandled_events_and_retry_revives_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from eki_whatsapp.store.base import Lease, utcnow
    from eki_whatsapp.testing.store_contract import inbound

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    lease = Lease("w1", utcnow() + timedelta(minutes=1))
    dead = store.record_work(inbound("wamid.DEAD", text="my card number is 4111"), lease)
    waiting = store.record_work(inbound("wamid.WAIT"), lease)
    assert dead is not None and waiting is not None
    store.finish_work(dead, "w1", error="OrderHandler: TimeoutError: orders API")
    store.close()

    code, text = run("pending", "--store", url, "--env-file", "/dev/null")
    assert code == 0
    assert dead in text and waiting in text and "dead" in text and "orders API" in text
    assert "4111" not in text  # what users wrote is not printed
    code, text = run("pending", "--store", url, "--json", "--env-file", "/dev/null")
    states = {e["id"]: e["state"] for e in json.loads(text)["events"]}
    assert states == {dead: "dead", waiting: "pending"}

    assert run("retry", "--store", url, "--env-file", "/dev/null")[0] == 2  # an id or --all
    assert run("retry", "m999", "--store", url, "--env-file", "/dev/null")[0] == 1
    code, text = run("retry", dead, "--store", url, "--env-file", "/dev/null")
    assert code == 0 and "1 event(s)" in text
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    item = store.get_work(dead)
    assert item is not None and item.state == "pending" and item.attempts == 0
    store.close()
    assert run("retry", "--all", "--store", url, "--env-file", "/dev/null")[0] == 0


def test_pending_lists_queued_sends_and_retry_sends_them_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from eki_whatsapp.store.base import Lease, utcnow
    from eki_whatsapp.testing.store_contract import queued_send

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    waiting = store.enqueue_send(*queued_send(expires_at=utcnow() + timedelta(hours=1)))
    ended = store.enqueue_send(*queued_send(expires_at=utcnow() + timedelta(hours=1)))
    store.claim_sends(Lease("w1", utcnow() + timedelta(minutes=1)), now=utcnow())
    store.finish_send(
        waiting, "w1", state="queued", retry_at=utcnow() + timedelta(hours=1), error="meta: down"
    )
    store.finish_send(ended, "w1", state="expired", error="not delivered within the TTL")
    store.close()

    code, text = run("pending", "--store", url, "--env-file", "/dev/null")
    assert code == 0 and waiting in text and "outbox" in text and "meta: down" in text
    assert ended not in text  # ended sends are not pending
    assert "hi there" not in text  # what the bot wrote is not printed
    code, text = run("pending", "--store", url, "--json", "--env-file", "/dev/null")
    (send,) = json.loads(text)["sends"]
    assert (send["id"], send["state"], send["attempts"], send["last_error"]) == (
        waiting,
        "queued",
        1,
        "meta: down",
    )

    code, text = run("retry", ended, "--store", url, "--env-file", "/dev/null")
    assert code == 0 and "1 send(s)" in text
    code, text = run("retry", "--all", "--store", url, "--env-file", "/dev/null")
    assert code == 0 and "2 send(s)" in text
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    due = store.claim_sends(Lease("w2", utcnow() + timedelta(minutes=1)), now=utcnow())
    assert {item.id for item in due} == {waiting, ended}
    store.close()
