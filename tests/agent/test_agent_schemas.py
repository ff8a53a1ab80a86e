"""Strict tool schemas stay inside the API's structured-outputs subset (issue 17, item 4).

The subset is OpenAI's documented one:
https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
(:func:`eki_whatsapp.testing.strict_schema_problems` encodes it, as the local fake server
applies it to every ``strict: true`` tool it receives).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
import warnings
from decimal import Decimal
from ipaddress import IPv4Address
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, HttpUrl

from eki_whatsapp.agent import Agent, ToolSchemaWarning, tool
from eki_whatsapp.agent.builtin import INTERACTIVE_TOOLS, ask_for_human
from eki_whatsapp.examples import eki
from eki_whatsapp.store import MemoryStore
from eki_whatsapp.testing import FakeOpenAI, strict_schema_problems


class Level(enum.Enum):
    BASIC = "basic"
    ADVANCED = "advanced"


class Address(BaseModel):
    street: str
    floor: int | None = None
    note: str = "none"


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool = True


class Node(BaseModel):
    name: str
    children: list[Node] = []


# Every kind of parameter a tool author is likely to write.
TYPES: dict[str, Any] = {
    "str": str,
    "int_bounded": Annotated[int, Field(ge=1, le=5)],
    "float": float,
    "bool": bool,
    "literal": Literal["a", "b"],
    "single_literal": Literal["only"],
    "enum": Level,
    "list": list[str],
    "set": set[str],
    "short_str": Annotated[str, Field(max_length=20, min_length=1)],
    "pattern": Annotated[str, Field(pattern=r"^[A-Z]{3}$")],
    "datetime": dt.datetime,
    "date": dt.date,
    "time": dt.time,
    "timedelta": dt.timedelta,
    "uuid": uuid.UUID,
    "ipv4": IPv4Address,
    "url": HttpUrl,
    "bytes": bytes,
    "decimal": Decimal,
    "model": Address,
    "optional_model": Address | None,
    "tagged_union": Annotated[Cat | Dog, Field(discriminator="kind")],
    "plain_union": int | str,
    "recursive": Node,
    "list_of_models": list[Address],
    "dict": dict[str, int],
    "any": Any,
    "tuple": tuple[int, str],
}


def tool_for(name: str, annotation: Any, *, default: bool) -> Any:
    namespace: dict[str, Any] = {"T": annotation}
    signature = "value: T = None" if default else "value: T"
    exec(f"def {name}({signature}) -> str:\n    '''A tool taking {name}.'''\n    return 'ok'", namespace)
    namespace[name].__annotations__["value"] = annotation
    return namespace[name]


@pytest.mark.parametrize("default", [False, True], ids=["required", "optional"])
@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_generated_schema_is_strict_only_inside_the_documented_subset(name: str, default: bool) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = tool(tool_for(f"take_{name}", TYPES[name], default=default))
    spec = t.spec(strict=True)
    if spec.strict:
        assert strict_schema_problems(spec.parameters) == [], json.dumps(spec.parameters, indent=1)
    else:
        assert name in ("dict", "any", "tuple"), f"{name} should have a strict form"
        assert any(
            issubclass(w.category, ToolSchemaWarning) and "non-strict" in str(w.message) for w in caught
        )


@pytest.mark.parametrize("t", [*INTERACTIVE_TOOLS, ask_for_human, *eki.TOOLS], ids=repr)
def test_the_librarys_own_tools_are_strict_inside_the_subset(t: Any) -> None:
    spec = t.spec(strict=True)
    assert spec.strict and strict_schema_problems(spec.parameters) == []


def test_conversions_are_announced_at_definition() -> None:
    with pytest.warns(
        ToolSchemaWarning, match=r"format 'uri'.*'oneOf' sent as 'anyOf'.*adapted for strict mode"
    ):

        @tool
        def adopt(page: HttpUrl, pet: Annotated[Cat | Dog, Field(discriminator="kind")]) -> str:
            """Adopt a pet seen on a page."""
            return "ok"

    params = adopt.spec(strict=True).parameters
    assert params["properties"]["page"] == {
        "type": "string",
        "description": "(format: uri; at least 1 characters; at most 2083 characters)",
    }
    assert "oneOf" not in json.dumps(params) and "discriminator" not in json.dumps(params)


def test_the_sdk_helper_agrees_on_what_it_covers() -> None:
    """Where ``openai.pydantic_function_tool`` does the job (plain models), both give the same
    required/additionalProperties structure; it just does not adapt what is outside the subset."""
    import openai

    class Enrol(BaseModel):
        course: str
        level: Level
        address: Address

    sdk = openai.pydantic_function_tool(Enrol)["function"]["parameters"]
    assert sdk["required"] == ["course", "level", "address"] and sdk["additionalProperties"] is False
    strict = tool(_enrol).spec(strict=True).parameters
    assert strict["required"] == sdk["required"] and strict["additionalProperties"] is False
    assert strict_schema_problems(strict) == []


def _enrol(course: str, level: Level, address: Address) -> str:
    """Enrol."""
    return "ok"


@pytest.mark.asyncio
async def test_nested_optional_fields_accept_null_against_the_server(api) -> None:
    seen: list[Any] = []

    @tool
    def ship(
        to: Address, pet: Annotated[Cat | Dog, Field(discriminator="kind")], page: HttpUrl | None = None
    ) -> str:
        """Ship a pet to an address."""
        seen.append((to, pet, page))
        return "shipped"

    import openai

    with FakeOpenAI() as server:
        server.script(
            FakeOpenAI.tools(
                (
                    "ship",
                    {
                        "to": {"street": "Gran Via 1", "floor": None, "note": None},
                        "pet": {"kind": "cat", "lives": None},
                        "page": None,
                    },
                )
            ),
            FakeOpenAI.answer("Done."),
        )
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.url, max_retries=0)
        reply = await Agent("x", [ship], client=client, api=api, store=MemoryStore()).respond("u1", "ship it")
        await client.close()

    assert reply.text == "Done." and reply.tool_calls[0].ok, reply.tool_calls
    assert seen == [(Address(street="Gran Via 1"), Cat(kind="cat"), None)]  # null → the defaults
    assert server.requests[0].status == 200  # the strict schema was accepted
    sent_tool = server.requests[0].body["tools"][0]
    assert (sent_tool.get("function") or sent_tool)["strict"] is True


@pytest.mark.asyncio
async def test_the_fake_server_refuses_what_the_api_refuses(api) -> None:
    import openai

    from eki_whatsapp.agent import ModelError, ToolSpec
    from eki_whatsapp.agent.openai_model import OpenAIChatModel

    bad = ToolSpec(
        "pick",
        "Pick.",
        {
            "type": "object",
            "properties": {"x": {"oneOf": [{"type": "string"}]}},
            "required": ["x"],
            "additionalProperties": False,
        },
        strict=True,
    )
    with FakeOpenAI() as server:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.url, max_retries=0)
        with pytest.raises(ModelError, match="'oneOf' is not permitted"):
            await OpenAIChatModel(client=client, api=api).complete([{"role": "user", "content": "hi"}], [bad])
        await client.close()
