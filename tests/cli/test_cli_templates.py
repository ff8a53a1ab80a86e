"""``eki-whatsapp templates push|list|status`` against the fake Graph and Twilio APIs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eki_whatsapp.cli import main
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI

TEMPLATES = [
    {
        "name": "order_shipped",
        "language": "en_US",
        "category": "UTILITY",
        "header": {"type": "video", "url": "https://cdn.example.com/clip.mp4"},
        "body": "Hi {{1}}, your order {{2}} is on its way.",
        "examples": ["Sheena", "8127"],
        "footer": "Eki shop",
        "buttons": [{"type": "quick_reply", "text": "Stop updates"}],
    },
    {"name": "welcome", "language": "es", "body": "Hola {{first_name}}", "examples": {"first_name": "Ana"}},
]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGraphAPI, FakeTwilioAPI]]:
    with FakeGraphAPI(auto_status=()) as graph, FakeTwilioAPI(auto_status=()) as twilio:
        yield graph, twilio


@pytest.fixture
def env_file(tmp_path: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]) -> Path:
    graph, twilio = fakes
    values = {
        "WHATSAPP_PROVIDER": "dual",
        "WHATSAPP_STORE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
        **graph.env(),
        **twilio.env(),
    }
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_push_list_and_status(
    tmp_path: Path, env_file: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]
) -> None:
    graph, twilio = fakes
    file = tmp_path / "templates.json"
    file.write_text(json.dumps(TEMPLATES))
    code, text = run("templates", "push", str(file), "--env-file", str(env_file))
    assert code == 0, text
    assert text.count("created") == 4  # two templates on two providers
    assert graph.template("welcome", "es")["parameter_format"] == "NAMED"

    code, text = run("templates", "push", str(file), "--env-file", str(env_file))
    assert code == 0 and text.count("unchanged") == 4 and "created" not in text

    graph.template("order_shipped")["status"] = "REJECTED"
    graph.template("order_shipped")["rejected_reason"] = "INVALID_FORMAT"
    twilio.set_approval("order_shipped", "approved")
    code, text = run("templates", "status", "--env-file", str(env_file))
    assert code == 0, text
    assert "rejected" in text and "INVALID_FORMAT" in text and "approved" in text

    code, text = run("templates", "list", "--json", "--env-file", str(env_file))
    records = {r["name"]: r for r in json.loads(text)}
    assert records["order_shipped"]["providers"]["meta"]["status"] == "rejected"
    assert records["order_shipped"]["providers"]["twilio"]["status"] == "approved"
    assert records["welcome"]["providers"]["meta"]["status"] == "pending"


def test_push_names_the_field_at_fault(tmp_path: Path, env_file: Path) -> None:
    file = tmp_path / "templates.json"
    file.write_text(json.dumps([{"name": "Bad Name", "body": "x"}]))
    code, text = run("templates", "push", str(file), "--env-file", str(env_file))
    assert code == 2 and "name" in text and "lower-case" in text


def test_yaml_files_load_like_json(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from eki_whatsapp.templates import load

    file = tmp_path / "templates.yaml"
    file.write_text(
        "- name: welcome\n  language: es\n  body: 'Hola {{1}}'\n  examples: [Ana]\n"
        "  buttons:\n    - {type: url, text: Ver, url: 'https://example.com/{{1}}', example: abc}\n"
    )
    (definition,) = load(file)
    assert definition.variables == ("1",) and definition.buttons[0].example == "abc"  # type: ignore[union-attr]
