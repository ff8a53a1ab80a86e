"""Outbound message models: WhatsApp limits are checked at construction, naming field and limit."""

from __future__ import annotations

import dataclasses

import pytest

from eki_whatsapp.messages import (
    Button,
    Buttons,
    ListMenu,
    Location,
    Media,
    MessageError,
    Reaction,
    Row,
    Section,
    Template,
    TemplateButton,
    Text,
)


def test_kinds() -> None:
    assert Text("x").kind == "text"
    assert Media.video("https://a.example/v.mp4").kind == "video"
    assert Template("t").kind == "template"
    assert Buttons("b", ["x"]).kind == "buttons"
    assert ListMenu("b", "Open", [Row("1", "One")]).kind == "list"
    assert Location(0, 0).kind == "location"
    assert Reaction("wamid.1", "x").kind == "reaction"


def test_text_is_positional_and_frozen() -> None:
    text = Text("hello")
    assert text.body == "hello" and text.preview_url is False and text.reply_to is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        text.body = "changed"  # type: ignore[misc]


def test_text_from_markdown() -> None:
    assert Text.from_markdown("**hi** [x](https://e.com)").body == "*hi* x (https://e.com)"


@pytest.mark.parametrize(
    ("build", "field", "limit"),
    [
        (lambda: Buttons("Pick", ["A" * 21]), "Buttons.buttons[0].title", "20"),
        (lambda: Buttons("Pick", ["a", "b", "c", "d"]), "Buttons.buttons", "3"),
        (lambda: Buttons("x" * 1025, ["a"]), "Buttons.body", "1024"),
        (lambda: Buttons("Pick", ["a"], header="h" * 61), "Buttons.header", "60"),
        (lambda: Buttons("Pick", ["a"], footer="f" * 61), "Buttons.footer", "60"),
        (lambda: Buttons("Pick", [("i" * 257, "a")]), "Buttons.buttons[0].id", "256"),
        (lambda: ListMenu("b", "B" * 21, [Row("1", "x")]), "ListMenu.button", "20"),
        (lambda: ListMenu("b", "Open", [Row(str(i), f"r{i}") for i in range(11)]), "ListMenu.sections", "10"),
        (lambda: ListMenu("b", "Open", [Row("1", "t" * 25)]), "ListMenu.sections[0].rows[0].title", "24"),
        (
            lambda: ListMenu("b", "Open", [Row("1", "t", "d" * 73)]),
            "ListMenu.sections[0].rows[0].description",
            "72",
        ),
        (lambda: ListMenu("b", "Open", [Row("i" * 201, "t")]), "ListMenu.sections[0].rows[0].id", "200"),
        (
            lambda: ListMenu("b", "Open", [Section("s" * 25, [Row("1", "t")])]),
            "ListMenu.sections[0].title",
            "24",
        ),
        (
            lambda: ListMenu("b", "Open", [Section(f"S{i}", [Row(str(i), "t")]) for i in range(11)]),
            "ListMenu.sections",
            "10",
        ),
        (lambda: Media.image("https://a.example/i.jpg", caption="c" * 1025), "Media.caption", "1024"),
        (lambda: Template("t", callback_data="x" * 513), "Template.callback_data", "512"),
        (lambda: Template("t", body=["x" * 1025]), "Template.body[0]", "1024"),
    ],
)
def test_limits_name_the_field_and_the_limit(build: object, field: str, limit: str) -> None:
    with pytest.raises(MessageError) as info:
        build()  # type: ignore[operator]
    assert info.value.field == field
    assert str(info.value).startswith(field) and limit in str(info.value)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Text(""), "Text.body"),
        (lambda: Buttons("Pick", []), "Buttons.buttons"),
        (lambda: Buttons("Pick", [("a", "Same"), ("b", "Same")]), "Buttons.buttons[1].title"),
        (lambda: Buttons("Pick", [("a", "X"), ("a", "Y")]), "Buttons.buttons[1].id"),
        (lambda: Buttons("Pick", [(" a", "X")]), "Buttons.buttons[0].id"),
        (
            lambda: ListMenu("b", "Open", [Section(None, [Row("1", "t")]), Section("B", [Row("2", "t")])]),
            "ListMenu.sections[0].title",
        ),
        (lambda: ListMenu("b", "Open", [Row("1", "t"), Row("1", "u")]), "ListMenu.sections[0].rows[1].id"),
        (
            lambda: ListMenu("b", "Open", [Row("1", "t")], header=Media.image("https://a.example/i.jpg")),  # type: ignore[arg-type]
            "ListMenu.header",
        ),
        (lambda: Media("image"), "Media.url"),
        (lambda: Media("image", url="https://a.example/i.jpg", media_id="1"), "Media.url"),
        (lambda: Media("image", url="ftp://a.example/i.jpg"), "Media.url"),
        (lambda: Media("gif", url="https://a.example/i.gif"), "Media.kind"),  # type: ignore[arg-type]
        (lambda: Media("audio", url="https://a.example/a.ogg", caption="no"), "Media.caption"),
        (lambda: Media("image", url="https://a.example/i.jpg", filename="x.jpg"), "Media.filename"),
        (lambda: Location(91, 0), "Location.latitude"),
        (lambda: Location(0, -181), "Location.longitude"),
        (lambda: Reaction(""), "Reaction.message_id"),
        (lambda: Template(""), "Template.name"),
        (lambda: Template("t", header=Media.audio("https://a.example/a.ogg")), "Template.header"),
        (lambda: Template("t", buttons=[TemplateButton(0, "quick_reply")]), "Template.buttons[0].payload"),
        (lambda: Template("t", content_sid="MG123"), "Template.content_sid"),
        (
            lambda: Template("t", content_sid="HX1", content_variables={"1": ""}),
            "Template.content_variables['1']",
        ),
        (lambda: Text("x", reply_to=""), "Text.reply_to"),
        (
            lambda: Template("t", header=Media.image("https://a.example/i.jpg", caption="lost")),
            "Template.header.caption",
        ),
        (
            lambda: Buttons("b", ["x"], header=Media.image("https://a.example/i.jpg", caption="lost")),
            "Buttons.header.caption",
        ),
    ],
)
def test_invalid_messages(build: object, field: str) -> None:
    with pytest.raises(MessageError) as info:
        build()  # type: ignore[operator]
    assert info.value.field == field


def test_limits_at_the_boundary_are_accepted() -> None:
    Buttons("x" * 1024, [("a" * 256, "T" * 20), "b", "c"], header="h" * 60, footer="f" * 60)
    ListMenu("b", "B" * 20, [Row(str(i), "t" * 24, "d" * 72) for i in range(10)])
    Media.document("https://a.example/d.pdf", caption="c" * 1024, filename="d.pdf")


def test_coercions() -> None:
    buttons = Buttons("Pick", ["Yes", ("n", "No"), Button("m", "Maybe")])
    assert buttons.items == (Button("Yes", "Yes"), Button("n", "No"), Button("m", "Maybe"))
    menu = ListMenu("b", "Open", [Row("1", "One"), Row("2", "Two")])
    assert menu.section_list == (Section(None, (Row("1", "One"), Row("2", "Two"))),)
    assert Media.image("1479537139650973").media_id == "1479537139650973"
    assert Media.image("https://a.example/i.jpg").url == "https://a.example/i.jpg"


def test_template_twilio_variables() -> None:
    from eki_whatsapp.messages import Currency, DateTime

    template = Template(
        "t", body=["Ana", Currency("$10.99", "USD", 10990), DateTime("June 9")], content_sid="HX1"
    )
    assert template.twilio_variables() == {"1": "Ana", "2": "$10.99", "3": "June 9"}
    assert template.twilio_content_variables() == '{"1":"Ana","2":"$10.99","3":"June 9"}'
    assert Template("t").twilio_content_variables() is None


def test_match_typed_answers() -> None:
    buttons = Buttons("Pick", [("yes", "Yes"), ("no", "No")])
    assert [buttons.match(a) for a in ("1", "2.", "NO", "yes", "", "maybe", "0")] == [
        "yes",
        "no",
        "no",
        "yes",
        None,
        None,
        None,
    ]
