"""``eki-whatsapp`` (also ``python -m eki_whatsapp``): the command line.

Commands: ``demo`` (offline, end to end), ``chat`` (talk to the bot in the terminal), ``serve``
(run the webhook on a local port), ``doctor`` (check settings and credentials), ``send``,
``simulate`` (post a signed fake inbound message to any webhook URL), ``templates push|list|status``
(templates managed from code) and ``costs``.

Exit codes: 0 success, 1 a check, a send or a request failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from . import __version__
from .bot import Bot
from .errors import ConfigError, EkiWhatsAppError, SettingsError
from .events import InboundMessage
from .i18n import gettext
from .i18n import gettext as _
from .providers.base import WebhookReader
from .settings import Settings

if TYPE_CHECKING:
    from .sandbox import FakeProviders

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DEMO_META_USER = ("5215512345678", "Lucía")
DEMO_TWILIO_USER = ("5511987654321", "João")


class _Out:
    """Terminal output with optional colour (off when not a TTY or NO_COLOR is set)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.color = stream.isatty() and "NO_COLOR" not in os.environ

    def __call__(self, text: str = "", style: str = "") -> None:
        codes = {
            "bold": "1",
            "dim": "2",
            "green": "32",
            "red": "31",
            "yellow": "33",
            "cyan": "36",
            "blue": "34",
        }
        if self.color and style in codes:
            text = f"\033[{codes[style]}m{text}\033[0m"
        print(text, file=self.stream, flush=True)


# --- helpers ---------------------------------------------------------------------------------------
def _load_settings(args: argparse.Namespace) -> Settings:
    env_file = getattr(args, "env_file", None) or ".env"
    return Settings(_env_file=env_file)


def _load_bot_factory(spec: str | None) -> Callable[[Settings], Bot]:
    """``module:attribute`` naming a ``Bot`` or a callable ``(settings) -> Bot``; default: Eki."""
    if spec is None:
        from .examples.eki import register

        def build_eki(settings: Settings) -> Bot:
            bot = Bot(settings, name="Eki")
            register(bot)
            return bot

        return build_eki
    module_name, _sep, attr = spec.partition(":")
    if not attr:
        raise ConfigError(_("--bot {spec!r}: use 'package.module:attribute'").format(spec=spec))
    sys.path.insert(0, os.getcwd())
    target = getattr(importlib.import_module(module_name), attr)
    if isinstance(target, Bot):
        return lambda settings: target
    return lambda settings: target(settings)


@contextmanager
def _config_errors(out: _Out) -> Iterator[None]:
    try:
        yield
    except SettingsError as exc:
        out(gettext("configuration error: {error}").format(error=exc.render(gettext)), "red")
        raise SystemExit(EXIT_USAGE) from None
    except ConfigError as exc:
        out(gettext("configuration error: {error}").format(error=exc), "red")
        raise SystemExit(EXIT_USAGE) from None


def _indented(text: str | None) -> str:
    """The whole text (never cut: the point is to read the answer), lines aligned under the first."""
    return (text or "").replace("\n", "\n      ")


# --- demo ----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, out: _Out) -> int:
    """Offline, end to end: Eki with the fake providers, over HTTP, with SQLite."""
    from .examples.eki import build_eki_agent, offline_model
    from .messages import Template
    from .sandbox import Sandbox
    from .testing import meta_button_reply, meta_image, meta_text, twilio_media, twilio_text

    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(args.store).resolve() if args.store else Path(tmp) / "demo.sqlite3"

        def build(settings: Settings) -> Bot:
            bot = Bot(settings, name="Eki")
            model = None if args.openai else offline_model()
            bot.on_message(build_eki_agent(settings, store=bot.store, model=model))
            return bot

        extra = {
            "whatsapp_fallback_template": "eki_recordatorio",
            "whatsapp_fallback_template_language": "es",
            "whatsapp_fallback_template_content_sid": "HX" + "d" * 32,
        }
        with Sandbox(build, store_url=f"sqlite:///{store_path}", settings=extra) as sb:
            out(
                _("eki-whatsapp demo — offline: fake Meta and Twilio APIs, SQLite, the Eki assistant"), "bold"
            )
            out(
                _("webhook {url} · Graph API {graph} · Twilio API {twilio}").format(
                    url=sb.url, graph=sb.graph.base_url, twilio=sb.twilio.base_url
                ),
                "dim",
            )
            out(_("store {path}").format(path=store_path), "dim")
            meta_user, meta_name = DEMO_META_USER
            tw_user, tw_name = DEMO_TWILIO_USER
            media_id = sb.graph.add_media(b"\x89PNG\r\n\x1a\n demo picture", "image/png")
            steps: list[tuple[str, Any]] = [
                ("meta", meta_text("Hola, ¿qué cursos tienen?", sender=meta_user, profile_name=meta_name)),
                (
                    "twilio",
                    twilio_text("Oi! quiero hacer un quiz de python", sender=tw_user, profile_name=tw_name),
                ),
                (
                    "meta",
                    meta_button_reply(
                        "quiz_python", "Quiz de Python", sender=meta_user, profile_name=meta_name
                    ),
                ),
                ("twilio", twilio_text("b", sender=tw_user, profile_name=tw_name)),
                (
                    "meta",
                    meta_image(
                        media_id, caption="video de fracciones", sender=meta_user, profile_name=meta_name
                    ),
                ),
                (
                    "twilio",
                    twilio_media(
                        sb.twilio.add_media(b"\xff\xd8\xff demo photo", "image/jpeg"),
                        "image/jpeg",
                        caption="inscribirme en python",
                        sender=tw_user,
                        profile_name=tw_name,
                    ),
                ),
            ]
            seen = {"meta": 0, "twilio": 0}
            for provider, payload in steps:
                text = _payload_text(sb.bot.webhook_readers, payload)
                who = _("{provider} user {name}").format(
                    provider=provider, name=meta_name if provider == "meta" else tw_name
                )
                out(f"\n▶ {who}: {text}", "cyan")
                response = sb.post(payload)
                answered = _("webhook answered {status}").format(status=response.status_code)
                out(f"  {answered} {response.headers.get('content-type', '')}", "dim")
                sb.settle()
                _print_replies(sb, seen, out)

            _demo_real_buttons(sb, tw_user, tw_name, seen, out)

            out(
                "\n▶ " + _("Meta outage: the Graph API stops answering; a reminder goes out anyway"), "yellow"
            )
            sb.graph.outage()
            reminder = Template(
                "eki_recordatorio",
                language="es",
                body=[meta_name, "Python"],
                content_sid="HX" + "c" * 32,
            )
            try:
                receipt = sb.bot.send(meta_user, reminder, category="utility")
                row = sb.bot.store.get_message(receipt.provider, receipt.message_id)
                reason = row.reason if row else "?"
                sent = _("sent through {provider} ({reason}), id {id}").format(
                    provider=receipt.provider, reason=reason, id=receipt.message_id
                )
                out(f"  {sent}", "green")
            except EkiWhatsAppError as exc:
                out("  " + _("not sent: {error}").format(error=exc), "red")
            sb.graph.restore()
            sb.settle()
            _print_replies(sb, seen, out)

            _print_log(sb.bot, out)
            out("\n" + _("Cost report"), "bold")
            out(str(sb.bot.costs.report()))
            delivered = sum(1 for m in sb.graph.sent + sb.twilio.sent if m.status in ("delivered", "read"))
            totals = _("{meta} messages via Meta, {twilio} via Twilio, {delivered} delivered/read.")
            out(
                "\n" + totals.format(meta=len(sb.graph.sent), twilio=len(sb.twilio.sent), delivered=delivered)
            )
            out(
                _("Next: put real credentials in .env (docs/getting-started.md); run `eki-whatsapp doctor`."),
                "bold",
            )
    return EXIT_OK


def _demo_real_buttons(sb: Any, user: str, name: str, seen: dict[str, int], out: _Out) -> None:
    """Real WhatsApp buttons on Twilio: quick-reply content made on demand, then the user's tap
    coming back through the webhook as a typed reply."""
    from .messages import Buttons

    out(
        "\n▶ "
        + _("Eki asks {name} with real buttons on Twilio (twilio/quick-reply content)").format(name=name),
        "yellow",
    )
    question = Buttons(
        "¿Qué hacemos ahora?", [("quiz_python", "Quiz de Python"), ("ver_cursos", "Ver cursos")]
    )
    receipt = sb.bot.send(user, question)
    sent = sb.twilio.message(receipt.message_id)
    out(
        "  "
        + _("sent through {provider} as {rendering}: ContentSid {sid}").format(
            provider=receipt.provider, rendering=receipt.rendering, sid=sent.body.get("ContentSid")
        ),
        "green",
    )
    sb.settle()
    _print_replies(sb, seen, out)
    delivery = sb.twilio.tap(receipt.message_id, "quiz_python")
    tap = next(
        (e for e in _events(sb.bot.webhook_readers, delivery.payload) if isinstance(e, InboundMessage)),
        None,
    )
    if tap is not None:
        who = _("{provider} user {name}").format(provider="twilio", name=name)
        taps = _("taps button")
        out(
            f"\n▶ {who}: [{taps}] {tap.text} → {tap.type}/{tap.interactive_type}, {tap.payload!r}",
            "cyan",
        )
    out("  " + _("webhook answered {status}").format(status=delivery.http_status), "dim")
    sb.settle()
    _print_replies(sb, seen, out)


def _events(readers: Sequence[WebhookReader], payload: Any) -> list[Any]:
    from .pipeline import detect

    request = payload.request()
    reader = detect(readers, request)
    return list(reader.parse(request)) if reader is not None else []


def _payload_text(readers: Sequence[WebhookReader], payload: Any) -> str:
    """What the simulated user did, read by the provider's own parser (any provider)."""
    from .pipeline import detect

    request = payload.request()
    reader = detect(readers, request)
    events = reader.parse(request) if reader is not None else []
    message = next((e for e in events if isinstance(e, InboundMessage)), None)
    if message is None:
        return _("(no message)")
    if message.type in ("button", "interactive"):
        return "[" + _("taps button") + f"] {message.text}"
    if message.media:
        return f"[{message.media[0].mime_type or message.type}] {message.text or ''}"
    if message.type == "text":
        return message.text or ""
    return f"[{message.type}] {message.text or ''}"


def _print_replies(sb: Any, seen: dict[str, int], out: _Out) -> None:
    for provider, fake in (("meta", sb.graph), ("twilio", sb.twilio)):
        for message in fake.sent[seen[provider] :]:
            if message.type in ("read", "typing"):
                continue
            statuses = " → ".join(message.statuses) or message.status
            label = message.type if message.type != "text" else ""
            shown = _indented(message.text) or f"({message.type})"
            via = _("{bot} via {provider}").format(bot=sb.bot.name, provider=provider)
            out(f"  ◀ {via} {label}: {shown}", "green")
            out("      " + _("statuses: {statuses}").format(statuses=statuses), "dim")
        seen[provider] = len(fake.sent)


def _print_log(bot: Bot, out: _Out) -> None:
    out("\n" + _("Message log (store)"), "bold")
    rows = list(reversed(bot.store.list_log(limit=200)))
    for row in rows:
        text = (row.text or "").replace("\n", " ")
        reason = f" [{row.reason}]" if row.reason else ""
        out(
            f"  {row.direction:<3} {row.provider:<6} {row.type:<11} {row.user or '-':<14} "
            f"{row.status or '-':<10} {text[:48]}{reason}"
        )


# --- chat ----------------------------------------------------------------------------------------
def cmd_chat(args: argparse.Namespace, out: _Out) -> int:
    """Talk to the bot in the terminal, as a Meta or Twilio user, through the real webhook."""
    from .sandbox import Sandbox
    from .testing import meta_text, twilio_text

    with _config_errors(out):
        factory = _load_bot_factory(args.bot)
    provider = args.provider
    user = args.user
    with Sandbox(factory) as sb:
        who = f"{args.name} ({user})" if args.name else user
        out(
            _("Chatting with {bot} as {user} on {provider}. /meta, /twilio switch; /quit ends.").format(
                bot=sb.bot.name, user=who, provider=provider
            ),
            "bold",
        )
        seen = {"meta": len(sb.graph.sent), "twilio": len(sb.twilio.sent)}
        stream = sys.stdin
        while True:
            if stream.isatty():
                print("> ", end="", flush=True)
            line = stream.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            if text in ("/meta", "/twilio"):
                provider = text[1:]
                out(_("(now writing on {provider})").format(provider=provider), "dim")
                continue
            payload = (
                meta_text(text, sender=user, profile_name=args.name)
                if provider == "meta"
                else twilio_text(text, sender=user, profile_name=args.name)
            )
            response = sb.post(payload)
            if response.status_code >= 400:
                answered = _("webhook answered {status}").format(status=response.status_code)
                out(f"{answered}: {response.text}", "red")
                return EXIT_FAILED
            sb.settle()
            _print_replies(sb, seen, out)
    return EXIT_OK


# --- sandbox -------------------------------------------------------------------------------------
def cmd_sandbox(args: argparse.Namespace, out: _Out) -> int:
    """Fake Meta and Twilio APIs for your own app: print its environment, send it signed messages."""
    from .sandbox import FakeProviders

    fakes = FakeProviders(
        args.webhook, host=args.host, graph_port=args.graph_port, twilio_port=args.twilio_port
    )
    try:
        fakes.start()
    except OSError as exc:
        out(
            _("cannot start the fakes: {error} (choose other ports with --graph-port/--twilio-port)").format(
                error=exc
            ),
            "red",
        )
        return EXIT_FAILED
    try:
        return _talk_to_app(args, fakes, out)
    finally:
        fakes.close()


def _talk_to_app(args: argparse.Namespace, fakes: FakeProviders, out: _Out) -> int:
    from .testing import meta_text, twilio_text

    env = "".join(f"{name}={value}\n" for name, value in fakes.env().items())
    out(
        _("Fake Meta Graph API on {graph}, fake Twilio API on {twilio}").format(
            graph=fakes.graph.base_url, twilio=fakes.twilio.base_url
        ),
        "bold",
    )
    if args.write_env:
        Path(args.write_env).write_text(env, encoding="utf-8")
        out(_("environment written to {path}").format(path=args.write_env), "dim")
    out(_("Start (or restart) your app with this environment, e.g. in its .env:"), "dim")
    out(env.rstrip())
    if not args.webhook:
        out(_("Give --webhook URL to send messages to your app."), "dim")
        return _wait(args.duration, out)
    provider = args.provider
    texts = list(args.send or ())
    interactive = not texts
    if interactive:
        out(
            _(
                "Type a message to send to {url} as a {provider} user; /meta, /twilio switch; /quit ends."
            ).format(url=args.webhook, provider=provider),
            "bold",
        )
    failed = False
    while True:
        if texts:
            text = texts.pop(0)
        elif interactive:
            if sys.stdin.isatty():
                print("> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
        else:
            break
        if text in ("/quit", "/exit"):
            break
        if text in ("/meta", "/twilio"):
            provider = text[1:]
            continue
        if not text:
            continue
        build = meta_text if provider == "meta" else twilio_text
        payload = build(text, sender=args.user, profile_name=args.name)
        who = _("{provider} user {name}").format(provider=provider, name=args.user)
        out(f"▶ {who}: {text}", "cyan")
        try:
            response = fakes.post(payload)
        except httpx.HTTPError as exc:
            out(
                _("cannot reach {url}: {error} (is the app running?)").format(
                    url=args.webhook, error=f"{type(exc).__name__}: {exc}"
                ),
                "red",
            )
            failed = True
            continue
        if response.status_code >= 400:
            answered = _("webhook answered {status}").format(status=response.status_code)
            out(f"  {answered}: {response.text[:200]}", "red")
            failed = True
            continue
        out("  " + _("webhook answered {status}").format(status=response.status_code), "dim")
        replies = fakes.wait_for_replies(timeout=args.wait)
        if not replies:
            out("  " + _("no reply within {seconds:g} s").format(seconds=args.wait), "yellow")
        for message in replies:
            via = _("via {provider}").format(provider=message.provider)
            out(f"  ◀ {via}: {_indented(message.text) or '(' + message.type + ')'}", "green")
    return EXIT_FAILED if failed else EXIT_OK


def _wait(duration: float | None, out: _Out) -> int:
    out(_("Ctrl-C stops the fakes."), "dim")
    try:
        if duration is not None:
            time.sleep(duration)
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


# --- serve ---------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, out: _Out) -> int:
    """Run the webhook on a local port (expose it with ngrok/cloudflared for Meta and Twilio)."""
    from .testing import serve_bot

    with _config_errors(out):
        factory = _load_bot_factory(args.bot)
        if args.sandbox:
            from .sandbox import SANDBOX_APP_SECRET, Sandbox

            sb = Sandbox(factory, host=args.host, port=args.port).start()
            server = sb.server
            out(
                _("sandbox: Graph API {graph}, Twilio API {twilio}").format(
                    graph=sb.graph.base_url, twilio=sb.twilio.base_url
                ),
                "dim",
            )
            out(
                _(
                    "sandbox secrets (fake, for `eki-whatsapp simulate --secret`): Meta app secret "
                    "{meta}, Twilio auth token {twilio}"
                ).format(meta=SANDBOX_APP_SECRET, twilio=sb.twilio.auth_token),
                "dim",
            )
        else:
            settings = _load_settings(args)
            server = serve_bot(factory(settings), args.host, args.port, path=args.path)
    out(_("Webhook listening on {url} (GET and POST) — Ctrl-C to stop").format(url=server.url), "bold")
    out(_("Expose it over HTTPS (e.g. `ngrok http PORT`), then configure that URL at Meta and Twilio"), "dim")
    out(_("and set WHATSAPP_WEBHOOK_URL to it."), "dim")
    try:
        if args.duration is not None:
            time.sleep(args.duration)
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return EXIT_OK


# --- doctor --------------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace, out: _Out) -> int:
    from .doctor import diagnose, render

    with _config_errors(out):
        settings = _load_settings(args)
    checks = diagnose(settings, online=args.online, check_webhook=args.webhook)
    for line in render(checks).splitlines():
        style = "red" if line.startswith("✖") else "yellow" if line.startswith("!") else ""
        out(line, "green" if line.startswith("✔") else style)
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


# --- send ----------------------------------------------------------------------------------------
def cmd_send(args: argparse.Namespace, out: _Out) -> int:
    from .messages import Template, Text
    from .providers.base import ProviderError

    with _config_errors(out):
        settings = _load_settings(args)
        bot = Bot(settings)
    try:
        message: Template | Text
        if args.template or args.content_sid:
            message = Template(
                args.template or "template",
                language=args.language,
                body=list(args.var or ()),
                content_sid=args.content_sid,
            )
        elif args.text:
            message = Text(args.text)
        else:
            out(_("give --text or --template/--content-sid"), "red")
            return EXIT_USAGE
        receipt = bot.send(args.to, message, category=args.category, provider=args.provider)
        row = bot.store.get_message(receipt.provider, receipt.message_id)
        out(
            _("sent via {provider}: {id} ({status}, reason {reason}, attempts {attempts})").format(
                provider=receipt.provider,
                id=receipt.message_id,
                status=receipt.status,
                reason=row.reason if row and row.reason else "-",
                attempts=receipt.attempts,
            ),
            "green",
        )
        return EXIT_OK
    except ProviderError as exc:
        out(_("not sent: {error}").format(error=exc), "red")
        return EXIT_FAILED
    except (ValueError, ConfigError) as exc:
        out(_("not sent: {error}").format(error=exc), "red")
        return EXIT_USAGE
    finally:
        bot.close()


# --- simulate ------------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace, out: _Out) -> int:
    """Post a signed fake inbound message (or status) to any webhook URL."""
    import httpx

    from . import testing as t

    settings = None
    if args.secret is None:
        with _config_errors(out):
            settings = _load_settings(args)
    sender = args.sender
    if args.provider == "meta":
        builders: dict[str, Callable[[], t.Payload]] = {
            "text": lambda: t.meta_text(args.text, sender=sender, profile_name=args.name),
            "button": lambda: t.meta_button_reply(args.payload or "btn_1", args.text, sender=sender),
            "location": lambda: t.meta_location(19.4326, -99.1332, sender=sender),
            "image": lambda: t.meta_image("1479537139650973", caption=args.text, sender=sender),
            "status": lambda: t.meta_status(args.message_id or t.new_wamid(), args.status, recipient=sender),
        }
        secret = args.secret or (
            settings.meta_app_secret.get_secret_value() if settings and settings.meta_app_secret else None
        )
    else:
        builders = {
            "text": lambda: t.twilio_text(args.text, sender=sender, profile_name=args.name),
            "button": lambda: t.twilio_button(args.payload or "btn_1", args.text, sender=sender),
            "location": lambda: t.twilio_location(19.4326, -99.1332, sender=sender),
            "image": lambda: t.twilio_media(
                "https://example.com/picture.jpg", "image/jpeg", caption=args.text, sender=sender
            ),
            "status": lambda: t.twilio_status(args.message_id or t.new_message_sid(), args.status, to=sender),
        }
        secret = args.secret or (
            settings.twilio_auth_token.get_secret_value() if settings and settings.twilio_auth_token else None
        )
    if secret is None:
        out(
            _("warning: no secret (--secret, META_APP_SECRET / TWILIO_AUTH_TOKEN): posting unsigned"),
            "yellow",
        )
    payload = builders[args.kind]()
    try:
        response = payload.post(args.url, secret=secret, signed_url=args.signed_url)
    except httpx.HTTPError as exc:
        out(
            _("cannot reach {url}: {error}").format(url=args.url, error=f"{type(exc).__name__}: {exc}"), "red"
        )
        return EXIT_FAILED
    ok = 200 <= response.status_code < 300
    out(f"{args.provider} {args.kind} {payload.message_id} → {response.status_code} {response.text[:200]}",
        "green" if ok else "red")  # fmt: skip
    return EXIT_OK if ok else EXIT_FAILED


# --- templates -----------------------------------------------------------------------------------
def cmd_templates(args: argparse.Namespace, out: _Out) -> int:
    """``templates push FILE`` / ``list`` / ``status``: templates managed from code."""
    from .templates import load

    with _config_errors(out):
        settings = _load_settings(args)
        definitions = load(args.file) if args.action == "push" else []
        bot = Bot(settings, check_settings=False)
    try:
        if args.action == "push":
            with _config_errors(out):
                results = bot.templates.push(definitions)
            failed = False
            for result in results:
                state = result.state
                detail = f"{state.status} ({state.id})" if state is not None and state.id else ""
                if result.action == "failed":
                    failed = True
                    detail = str(result.error)
                style = {"created": "green", "updated": "yellow", "failed": "red"}.get(result.action, "")
                out(
                    f"{result.name}:{result.language}  {result.provider:<7} {result.action:<9} {detail}",
                    style,
                )
            if args.json:
                out(json.dumps([_push_json(r) for r in results], indent=2))
            return EXIT_FAILED if failed else EXIT_OK
        records = bot.templates.status() if args.action == "status" else bot.templates.list()
        if args.json:
            out(json.dumps([r.to_json() for r in records], indent=2, ensure_ascii=False))
            return EXIT_OK
        if not records:
            out(_("no templates pushed yet: eki-whatsapp templates push templates.yaml"))
        for record in records:
            out(f"{record.name}:{record.language}  {record.category}", "bold")
            for provider, state in sorted(record.providers.items()):
                reason = f" — {state.reason}" if state.reason else ""
                style = "green" if state.status == "approved" else "red" if state.status == "rejected" else ""
                out(f"  {provider:<7} {state.status:<9} {state.id or ''}{reason}", style)
        return EXIT_OK
    finally:
        bot.close()


def _push_json(result: Any) -> dict[str, Any]:
    return {
        "name": result.name,
        "language": result.language,
        "provider": result.provider,
        "action": result.action,
        "state": result.state.to_json() if result.state is not None else None,
        "error": result.error,
    }


# --- costs ---------------------------------------------------------------------------------------
def cmd_costs(args: argparse.Namespace, out: _Out) -> int:
    from .costs import Costs
    from .store import open_store

    with _config_errors(out):
        settings = _load_settings(args)
        store = open_store(args.store or settings.whatsapp_store_url)
    try:
        report = Costs.from_settings(store, settings).report(args.month)
    finally:
        store.close()
    if args.json:
        out(json.dumps(_report_json(report), indent=2, ensure_ascii=False))
    else:
        out(str(report))
    return EXIT_OK


def _report_json(report: Any) -> dict[str, Any]:
    lines = []
    for line in getattr(report, "lines", []):
        amount = line.amount
        lines.append(
            {
                "provider": line.provider,
                "category": line.category,
                "messages": line.messages,
                "billable": getattr(line, "billable", None),
                "free": getattr(line, "free", None),
                "unknown": getattr(line, "unknown", None),
                "cost": None if amount is None else str(amount),
            }
        )
    return {
        "month": getattr(report, "month", None),
        "currency": getattr(report, "currency", "USD"),
        "total": str(report.total),
        "unknown": report.unknown,
        "lines": lines,
    }


# --- pending / retry -----------------------------------------------------------------------------
def cmd_pending(args: argparse.Namespace, out: _Out) -> int:
    from .store import open_store
    from .store.base import utcnow

    with _config_errors(out):
        settings = _load_settings(args)
        store = open_store(args.store or settings.whatsapp_store_url)
    try:
        items = store.pending_work(limit=args.limit)
        pending_sends = getattr(store, "pending_sends", None)
        sends = pending_sends(limit=args.limit) if callable(pending_sends) else []
    finally:
        store.close()
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": item.id,
            "kind": item.kind,
            "state": item.state,
            "attempts": item.attempts,
            "age_seconds": round((now - item.created_at).total_seconds()),
            "what": _work_subject(item),
            "last_error": item.last_error,
            "next_attempt_at": None if item.next_attempt_at is None else item.next_attempt_at.isoformat(),
            "leased_by": item.lease_owner,
        }
        for item in items
    ]
    queued: list[dict[str, Any]] = [
        {
            "id": send.id,
            "state": send.state,
            "attempts": send.attempts,
            "age_seconds": round((now - (send.created_at or now)).total_seconds()),
            "what": f"{str(send.message.get('$', 'message')).lower()} to {send.to}",
            "last_error": send.last_error,
            "next_attempt_at": None if send.next_attempt_at is None else send.next_attempt_at.isoformat(),
            "expires_at": send.expires_at.isoformat(),
            "leased_by": send.lease_owner,
        }
        for send in sends
    ]
    if args.json:
        out(json.dumps({"events": rows, "sends": queued}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows and not queued:
        out(_("nothing pending: every recorded event was handled and every send went out"), "green")
        return EXIT_OK
    if rows:
        out(_("{count} event(s) not handled (oldest first):").format(count=len(rows)))
    for row in rows:
        color = "red" if row["state"] == "dead" else "yellow"
        line = "  {:<8} {:<8} {:<8} {:>7} ".format(
            row["id"], row["state"], row["kind"], _age(row["age_seconds"])
        ) + _("attempts={attempts} {what}").format(attempts=row["attempts"], what=row["what"])
        if row["last_error"]:
            line += "  " + _("last error: {error}").format(error=row["last_error"])
        out(line, color)
    if queued:
        out(_("{count} send(s) waiting in the outbox (oldest first):").format(count=len(queued)))
    for row in queued:
        line = "  {:<8} {:<8} {:>7} ".format(row["id"], row["state"], _age(row["age_seconds"])) + _(
            "attempts={attempts} {what}"
        ).format(attempts=row["attempts"], what=row["what"])
        if row["last_error"]:
            line += "  " + _("last error: {error}").format(error=row["last_error"])
        out(line, "yellow")
    out(_("retry one with `eki-whatsapp retry ID`, every failed or dead one with `--all`"))
    return EXIT_OK


def _work_subject(item: Any) -> str:
    """What a piece of work is about, in a few words (never the message text: it may be private)."""
    if item.status is not None:
        return f"{item.status.provider} status {item.status.status} of {item.status.message_id}"
    entry = item.entry
    if entry is None:
        return ""
    who = entry.sender or entry.recipient or "?"
    return f"{entry.provider} {entry.type} {entry.message_id or ''} from {who}"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds // 3600)}h"


def cmd_retry(args: argparse.Namespace, out: _Out) -> int:
    from datetime import timedelta

    from .store import open_store
    from .store.base import utcnow
    from .store.rules import parse_outbox_id

    if bool(args.id) == bool(args.all):
        out(_("give one work id (from `eki-whatsapp pending`) or --all"), "red")
        return EXIT_USAGE
    with _config_errors(out):
        settings = _load_settings(args)
        store = open_store(args.store or settings.whatsapp_store_url)
    # A send tried again gets a fresh time to live (it may have expired already).
    expires_at = utcnow() + timedelta(seconds=settings.whatsapp_outbox_ttl_seconds)
    retry_send = getattr(store, "retry_send", None)
    is_send = args.id is not None and parse_outbox_id(args.id) is not None
    changed = sends = 0
    try:
        if args.all or not is_send:
            changed = store.retry_work(None if args.all else args.id)
        if callable(retry_send) and (args.all or is_send):
            sends = retry_send(None if args.all else args.id, expires_at=expires_at)
    finally:
        store.close()
    if not changed and not sends and not args.all:
        out(
            _("{id}: no such work waiting to be handled (see `eki-whatsapp pending`)").format(id=args.id),
            "red",
        )
        return EXIT_FAILED
    if changed or not sends:
        out(
            _(
                "{count} event(s) will be handled again, by the next sweep of a running bot "
                "(WHATSAPP_SWEEP_INTERVAL_SECONDS)"
            ).format(count=changed),
            "green",
        )
    if sends:
        out(
            _(
                "{count} send(s) will be tried again, by the next sweep of a running bot "
                "(WHATSAPP_SWEEP_INTERVAL_SECONDS)"
            ).format(count=sends),
            "green",
        )
    return EXIT_OK


# --- worker --------------------------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace, out: _Out) -> int:
    """A Celery worker for ``WHATSAPP_RUNNER=celery``: ``celery worker`` on the library's app,
    the bot from ``WHATSAPP_BOT`` (docs/deployment.md)."""
    with _config_errors(out):
        from .runners.celery import worker_app

        app = worker_app(_load_settings(args))
    app.worker_main(argv=["worker", *args.celery_args])
    return EXIT_OK


# --- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eki-whatsapp",
        description=_("WhatsApp bots on Meta Cloud API and Twilio at once."),
        epilog=_("Exit codes: 0 ok, 1 failed, 2 bad usage or configuration."),
    )
    parser.add_argument("--version", action="version", version=f"eki-whatsapp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace, _Out], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    def store_options(p: argparse.ArgumentParser, *, json: bool = True) -> None:
        """The options of the commands that read the store."""
        p.add_argument("--store", help=_("store URL (default: WHATSAPP_STORE_URL)"))
        if json:
            p.add_argument("--json", action="store_true", help=_("machine-readable output"))
        p.add_argument("--env-file", help=_("settings file (default: .env)"))

    demo = add(
        "demo", cmd_demo, _("offline end-to-end demo: Eki on fake Meta and Twilio APIs (no accounts needed)")
    )
    demo.add_argument("--store", help=_("SQLite file for the demo's log (default: a temporary file)"))
    demo.add_argument(
        "--openai", action="store_true", help=_("use OpenAI (OPENAI_API_KEY) instead of the offline model")
    )

    chat = add("chat", cmd_chat, _("talk to the bot in the terminal (on the offline sandbox)"))
    chat.add_argument(
        "--provider", choices=("meta", "twilio"), default="meta", help=_("which user to impersonate")
    )
    chat.add_argument("--user", default="5215512345678", help=_("the user's number (digits)"))
    chat.add_argument("--name", help=_("the user's WhatsApp profile name (default: none)"))
    chat.add_argument(
        "--bot", help=_("your bot: 'package.module:attribute' (a Bot or a settings -> Bot factory)")
    )

    serve = add("serve", cmd_serve, _("run the webhook on a local port"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--path", default="/webhook/whatsapp/")
    serve.add_argument("--bot", help=_("your bot: 'package.module:attribute' (default: the Eki example)"))
    serve.add_argument(
        "--sandbox", action="store_true", help=_("use the fake providers instead of .env credentials")
    )
    serve.add_argument("--env-file", help=_("settings file (default: .env)"))
    serve.add_argument("--duration", type=float, help=argparse.SUPPRESS)

    sandbox = add(
        "sandbox",
        cmd_sandbox,
        _("fake Meta and Twilio APIs for your own app: prints the environment to use, sends signed messages"),
    )
    sandbox.add_argument(
        "--webhook", help=_("your app's webhook URL, e.g. http://127.0.0.1:8000/webhook/whatsapp/")
    )
    sandbox.add_argument("--send", action="append", help=_("send this text and exit (repeat for more)"))
    sandbox.add_argument("--provider", choices=("meta", "twilio"), default="meta", help=_("who writes first"))
    sandbox.add_argument("--user", default="5215512345678", help=_("the user's number (digits)"))
    sandbox.add_argument("--name", help=_("the user's WhatsApp profile name (default: none)"))
    sandbox.add_argument("--wait", type=float, default=10.0, help=_("seconds to wait for the app's reply"))
    sandbox.add_argument("--host", default="127.0.0.1", help=_("where the fakes listen"))
    sandbox.add_argument(
        "--graph-port", type=int, default=8701, help=_("fake Graph API port (0: any free one)")
    )
    sandbox.add_argument(
        "--twilio-port", type=int, default=8702, help=_("fake Twilio API port (0: any free one)")
    )
    sandbox.add_argument("--write-env", help=_("also write the environment to this file (e.g. .env.sandbox)"))
    sandbox.add_argument("--duration", type=float, help=argparse.SUPPRESS)

    doctor = add("doctor", cmd_doctor, _("check the settings and, with --online, the credentials"))
    doctor.add_argument("--online", action="store_true", help=_("call Meta and Twilio once each (read-only)"))
    doctor.add_argument(
        "--webhook", action="store_true", help=_("ask WHATSAPP_WEBHOOK_URL for Meta's challenge")
    )
    doctor.add_argument("--env-file", help=_("settings file (default: .env)"))

    send = add(
        "send", cmd_send, _("send a message (business-initiated; the routing policy picks the provider)")
    )
    send.add_argument("--to", required=True, help=_("recipient: +5511..., 5511... or whatsapp:+5511..."))
    send.add_argument("--text", help=_("a text message (inside the 24-hour window)"))
    send.add_argument("--template", help=_("Meta template name"))
    send.add_argument("--language", default="es", help=_("template language (default: es)"))
    send.add_argument("--content-sid", help=_("Twilio Content Template SID (HX...)"))
    send.add_argument("--var", action="append", help=_("template body parameter (repeat, in order)"))
    send.add_argument("--category", choices=("marketing", "utility", "authentication", "service"))
    send.add_argument("--provider", choices=("meta", "twilio"), help=_("force a provider"))
    send.add_argument("--env-file", help=_("settings file (default: .env)"))

    simulate = add(
        "simulate", cmd_simulate, _("post a signed fake inbound message or status to a webhook URL")
    )
    simulate.add_argument("url", help=_("webhook URL, e.g. http://127.0.0.1:8000/webhook/whatsapp/"))
    simulate.add_argument("--provider", choices=("meta", "twilio"), default="meta")
    simulate.add_argument("--kind", choices=("text", "button", "location", "image", "status"), default="text")
    simulate.add_argument("--text", default="Hola", help=_("message text, caption or button title"))
    simulate.add_argument("--payload", help=_("button id / payload"))
    simulate.add_argument("--sender", default="5215512345678", help=_("the user's number"))
    simulate.add_argument("--name", default="Tester", help=_("the user's profile name"))
    simulate.add_argument("--status", default="delivered", help=_("status for --kind status"))
    simulate.add_argument("--message-id", help=_("message id for --kind status"))
    simulate.add_argument("--secret", help=_("App Secret (Meta) / Auth Token (Twilio); default: from .env"))
    simulate.add_argument("--signed-url", help=_("the URL to sign when it differs (Twilio behind a proxy)"))
    simulate.add_argument("--env-file", help=_("settings file (default: .env)"))

    templates = add(
        "templates",
        cmd_templates,
        _("message templates managed from code: push, list, status (docs/templates.md)"),
    )
    actions = templates.add_subparsers(dest="action", required=True, metavar="ACTION")
    push = actions.add_parser(
        "push", help=_("create or update the templates of a JSON/YAML file on Meta and Twilio (idempotent)")
    )
    push.add_argument("file", help=_("templates file (.json, or .yaml with eki-whatsapp[yaml])"))
    actions.add_parser("list", help=_("the managed templates as last known (no request)"))
    actions.add_parser("status", help=_("ask Meta and Twilio for each template's approval status now"))
    for action in actions.choices.values():
        action.add_argument("--json", action="store_true", help=_("machine-readable output"))
        action.add_argument("--env-file", help=_("settings file (default: .env)"))

    costs = add("costs", cmd_costs, _("the cost report of a month from the store"))
    costs.add_argument("--month", help=_("YYYY-MM (default: this month)"))
    store_options(costs)

    pending = add(
        "pending",
        cmd_pending,
        _("events recorded but not handled yet (pending, failed, dead), and sends waiting in the outbox"),
    )
    pending.add_argument("--limit", type=int, default=100, help=_("at most this many (default: 100)"))
    store_options(pending)

    retry = add(
        "retry", cmd_retry, _("handle again a failed or dead event, or send a queued send now (or --all)")
    )
    retry.add_argument("id", nargs="?", help=_("the id shown by `eki-whatsapp pending` (m12, s7, o3)"))
    retry.add_argument(
        "--all", action="store_true", help=_("every failed or dead event, and every unsent send")
    )
    store_options(retry, json=False)

    worker = add(
        "worker",
        cmd_worker,
        _("run a Celery worker that handles events (WHATSAPP_RUNNER=celery; the bot from WHATSAPP_BOT)"),
    )
    worker.add_argument("--env-file", help=_("settings file (default: .env)"))
    worker.epilog = _("Other options go to `celery worker`, e.g. --concurrency 4 --loglevel INFO.")
    worker.set_defaults(celery_args=[])
    return parser


def _split_worker_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``eki-whatsapp worker`` takes ``--env-file`` and ``--help``; the rest is Celery's."""
    ours, celery = argv[:1], []
    rest = iter(argv[1:])
    for arg in rest:
        if arg in ("-h", "--help") or arg.startswith("--env-file="):
            ours.append(arg)
        elif arg == "--env-file":
            ours += [arg, next(rest, "")]
        elif arg != "--":
            celery.append(arg)
    return ours, celery


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    stream = stdout or sys.stdout
    out = _Out(stream)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="  · %(message)s", stream=sys.stderr)
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    celery_args: list[str] = []
    if arguments[:1] == ["worker"]:
        arguments, celery_args = _split_worker_args(arguments)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if celery_args:
        args.celery_args = celery_args
    try:
        with redirect_stdout(stream):
            result: int = args.func(args, out)
        return result
    except SystemExit as exc:
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return EXIT_FAILED


def _now_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
