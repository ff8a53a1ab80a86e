"""The @tool decorator: schemas from type hints and docstrings, strict mode, definition errors."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from eki_whatsapp.agent import (
    Agent,
    OfflineChatModel,
    ToolContext,
    ToolDefinitionError,
    ToolSchemaWarning,
    tool,
)
from eki_whatsapp.agent.tools import ToolArgumentsError, call_tool, parse_docstring, render_result


class Address(BaseModel):
    street: str
    number: int | None = None


@tool
def book_class(
    course: Literal["python", "maths"],
    day: str,
    seats: int = 1,
    note: str | None = None,
    address: Address | None = None,
    ctx: ToolContext | None = None,
) -> dict[str, Any]:
    """Book a class for the user.

    Checks availability first.

    Args:
        course: which course.
        day: the day, e.g. "monday"; may span
            two lines.
        seats: how many seats.

    Returns:
        the booking.
    """
    return {"course": course, "day": day, "seats": seats, "user": ctx.user_id if ctx else None}


def test_name_description_and_parameter_descriptions_come_from_the_function() -> None:
    assert book_class.name == "book_class"
    assert book_class.description == "Book a class for the user.\n\nChecks availability first."
    props = book_class.parameters["properties"]
    assert props["course"]["enum"] == ["python", "maths"]
    assert props["day"]["description"] == 'the day, e.g. "monday"; may span two lines.'
    assert props["seats"] == {"default": 1, "description": "how many seats.", "type": "integer"}
    assert set(book_class.parameters["required"]) == {"course", "day"}
    assert book_class.parameters["additionalProperties"] is False


def test_context_parameter_is_hidden_from_the_schema() -> None:
    assert book_class.context_param == "ctx"
    assert "ctx" not in book_class.parameters["properties"]
    assert "ctx" not in json.dumps(book_class.spec(strict=True).parameters)


def test_strict_schema_requires_every_property_and_makes_optional_ones_nullable() -> None:
    spec = book_class.spec(strict=True)
    assert spec.strict is True
    schema = spec.parameters
    assert schema["required"] == ["course", "day", "seats", "note", "address"]
    assert schema["properties"]["seats"]["type"] == ["integer", "null"]
    assert '"default"' not in json.dumps(schema)
    assert "null = default 1" in schema["properties"]["seats"]["description"]
    nested = schema["$defs"]["Address"]
    assert nested["additionalProperties"] is False
    assert nested["required"] == ["street", "number"]
    assert {"type": "null"} in schema["properties"]["address"]["anyOf"]


def test_non_strict_spec_keeps_defaults() -> None:
    spec = book_class.spec(strict=False)
    assert spec.strict is False
    assert spec.parameters["properties"]["seats"]["default"] == 1


def test_null_for_an_optional_parameter_means_its_default() -> None:
    kwargs = book_class.validate(
        '{"course": "maths", "day": "fri", "seats": null, "note": null, "address": null}'
    )
    assert kwargs["seats"] == 1
    assert kwargs["note"] is None


def test_validation_errors_name_the_field() -> None:
    with pytest.raises(ToolArgumentsError, match="course"):
        book_class.validate('{"course": "chemistry", "day": "fri"}')
    with pytest.raises(ToolArgumentsError, match="day"):
        book_class.validate('{"course": "maths"}')
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        book_class.validate('{"course": "maths", ')
    with pytest.raises(ToolArgumentsError, match="JSON object"):
        book_class.validate("[1, 2]")
    with pytest.raises(ToolArgumentsError, match=r"(?i)extra inputs"):
        book_class.validate('{"course": "maths", "day": "x", "ctx": "me"}')


def test_free_form_objects_cannot_be_strict() -> None:
    with pytest.warns(ToolSchemaWarning, match="free-form object.*sent non-strict"):

        @tool
        def tag(labels: dict[str, Any]) -> str:
            """Tag the conversation."""
            return "ok"

    assert tag.spec(strict=True).strict is False
    with pytest.raises(ToolDefinitionError, match="strict"):

        @tool(strict=True)
        def tag2(labels: dict[str, Any]) -> str:
            """Tag the conversation."""
            return "ok"


def test_strict_false_opts_out() -> None:
    @tool(strict=False, name="lookup-1", description="Look something up.")
    def lookup(q: str) -> str:
        return q

    spec = lookup.spec(strict=True)
    assert (spec.name, spec.description, spec.strict) == ("lookup-1", "Look something up.", False)


def test_annotated_field_descriptions() -> None:
    @tool
    def search(query: Annotated[str, Field(description="words to look for")]) -> str:
        """Search the catalogue."""
        return query

    assert search.parameters["properties"]["query"]["description"] == "words to look for"


@pytest.mark.parametrize("bad", ["has space", "", "x" * 65, "ñame", "a.b"])
def test_invalid_names_fail_at_definition(bad: str) -> None:
    with pytest.raises(ToolDefinitionError, match="invalid tool name"):
        tool(name=bad)(lambda: None)


def test_untyped_parameters_varargs_and_missing_descriptions_fail_at_definition() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        """Do x."""

    def varargs(*items: str) -> None:
        """Do items."""

    def undocumented(x: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match=r"'x'.*type hint"):
        tool(untyped)
    with pytest.raises(ToolDefinitionError, match=r"\*args"):
        tool(varargs)
    with pytest.raises(ToolDefinitionError, match="no description"):
        tool(undocumented)


def test_duplicate_tool_names_fail_when_the_agent_is_defined() -> None:
    @tool(name="book_class")
    def other(x: int) -> int:
        """Another tool with a taken name."""
        return x

    with pytest.raises(ToolDefinitionError, match="book_class"):
        Agent("x", [book_class, other], model=OfflineChatModel())


def test_plain_functions_are_wrapped_and_decorated_tools_stay_callable() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    agent = Agent("x", [add], model=OfflineChatModel())
    assert agent.tools["add"].parameters["required"] == ["a", "b"]
    assert book_class("python", "mon")["seats"] == 1


def test_sphinx_and_numpy_docstrings() -> None:
    summary, params = parse_docstring("Find it.\n\n:param query: what to find\n:param limit: how many\n")
    assert summary == "Find it."
    assert params == {"query": "what to find", "limit": "how many"}
    summary, params = parse_docstring(
        "Find it.\n\nParameters\n----------\nquery : str\n    what to find\nlimit : int\n    how many\n"
    )
    assert summary == "Find it."
    assert params == {"query": "what to find", "limit": "how many"}


@pytest.mark.asyncio
async def test_sync_tools_run_in_a_thread_and_async_tools_on_the_loop() -> None:
    import threading

    main = threading.get_ident()

    @tool
    def where_sync() -> int:
        """Thread id."""
        return threading.get_ident()

    @tool
    async def where_async(ctx: ToolContext) -> str:
        """Loop check."""
        asyncio.get_running_loop()
        return f"{threading.get_ident() == main}:{ctx.user_id}"

    assert await call_tool(where_sync, {}, None) != main
    assert await call_tool(where_async, {}, ToolContext(user_id="u1")) == "True:u1"


def test_results_are_rendered_as_text_for_the_model() -> None:
    assert render_result(None) == "done"
    assert render_result("plain") == "plain"
    assert json.loads(render_result({"a": [1, "ñ"]})) == {"a": [1, "ñ"]}
    assert json.loads(render_result(Address(street="Main"))) == {"street": "Main", "number": None}
