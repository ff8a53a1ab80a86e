"""Tools from plain typed functions: the :func:`tool` decorator.

The name comes from the function, the description from its docstring (the ``Args:`` section
describes each parameter), and the JSON schema from the type hints through pydantic::

    from typing import Literal
    from eki_whatsapp.agent import tool, ToolContext

    @tool
    def list_courses(level: Literal["basic", "advanced"] | None = None) -> list[str]:
        \"\"\"List the courses on offer.

        Args:
            level: only courses of this level.
        \"\"\"
        ...

    @tool(timeout=5)
    async def enrol(course_id: str, ctx: ToolContext) -> str:
        \"\"\"Enrol the user in a course.\"\"\"
        return f"{ctx.profile_name} enrolled in {course_id}"

A parameter annotated :class:`ToolContext` is filled by the agent with the conversation
(user id, provider, profile name, locale) and never shown to the model.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import types
import typing
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .schema import ToolSchemaWarning, nulls_to_defaults, strict_schema

if TYPE_CHECKING:
    from ..events import InboundMessage
    from ..messages import Message
    from ..store import Store

__all__ = [
    "Tool",
    "ToolArgumentsError",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolSchemaWarning",
    "ToolSpec",
    "tool",
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
F = TypeVar("F", bound=Callable[..., Any])


class ToolDefinitionError(ValueError):
    """A tool cannot be defined: bad name, duplicate name, untyped parameter, ..."""


class ToolError(Exception):
    """Raise from a tool to tell the model what went wrong, in your words.

    Unlike any other exception (whose details stay in the log), the message of a ``ToolError``
    is given to the model as the tool's result, e.g. ``raise ToolError("no course 'xyz'")``.
    """


class ToolArgumentsError(ValueError):
    """The model's arguments for a tool are not valid JSON or fail validation."""


@dataclass(frozen=True)
class ToolContext:
    """The conversation a tool runs in. Ask for it with a parameter annotated ``ToolContext``.

    Attributes:
        user_id: the user (``message.sender``; or whatever id you passed to ``Agent.respond``).
        provider: ``"meta"``/``"twilio"`` the message came in on (``None`` outside WhatsApp).
        profile_name: the user's WhatsApp display name, when known.
        locale: the language the agent answers in (``"es"``, ``"en"``, ...).
        message: the inbound message, under a bot.
        store: the agent's store (memory, usage, and a key-value space for your data).
        turn_id: id of the current turn (also on the usage records).
    """

    user_id: str
    provider: str | None = None
    profile_name: str | None = None
    locale: str = "en"
    message: InboundMessage | None = field(default=None, repr=False)
    store: Store | None = field(default=None, repr=False)
    turn_id: str | None = None
    #: Messages (``eki_whatsapp.messages`` models) tools asked to send with the answer.
    outbound: list[Message] = field(default_factory=list, repr=False)

    def attach(self, message: Message) -> None:
        """Send ``message`` (a :mod:`eki_whatsapp.messages` model) to the user with the answer.

        Attachments go out after the answer text, on the same channel, e.g. a lesson video or
        reply buttons.
        """
        self.outbound.append(message)


@dataclass(frozen=True)
class ToolSpec:
    """What a :class:`~eki_whatsapp.agent.ChatModel` is told about a tool."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    strict: bool = False


class Tool:
    """A function the model may call. Build one with :func:`tool`; call it like the function."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        self.func = func
        self.name: str = str(name or getattr(func, "__name__", ""))
        if not _NAME.match(self.name):
            raise ToolDefinitionError(
                f"invalid tool name {self.name!r}: use 1-64 letters, digits, '_' or '-' "
                "(pass name=... to @tool)"
            )
        if timeout is not None and timeout <= 0:
            raise ToolDefinitionError(f"tool {self.name!r}: timeout must be > 0 seconds")
        self.timeout = timeout
        target: Any = getattr(func, "__call__", func) if not inspect.isroutine(func) else func  # noqa: B004
        self.is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(func)
        summary, param_docs = parse_docstring(inspect.getdoc(func) or "")
        self.description = (description or summary).strip()
        if not self.description:
            raise ToolDefinitionError(
                f"tool {self.name!r} has no description: add a docstring or pass description=..."
            )
        self.context_param: str | None = None
        self.defaults: dict[str, Any] = {}
        self.args_model = self._build_model(param_docs)
        self.parameters: dict[str, Any] = _clean_schema(self.args_model.model_json_schema())
        self.strict_parameters: dict[str, Any] | None
        self.strict_parameters, notes = strict_schema(self.parameters, self.defaults)
        if strict and self.strict_parameters is None:
            raise ToolDefinitionError(
                f"tool {self.name!r} cannot have a strict schema ({notes[0]}); use strict=False, "
                "or typed models instead of free-form dicts and Any"
            )
        if strict is not False and notes:
            outcome = (
                "it is sent non-strict (the model is not held to the schema; arguments are still "
                "validated). Pass strict=False to silence this"
                if self.strict_parameters is None
                else "adapted for strict mode"
            )
            warnings.warn(
                f"tool {self.name!r}: {'; '.join(notes)}: {outcome}", ToolSchemaWarning, stacklevel=4
            )
        #: ``None``: strict when the agent asks for it and the schema allows it.
        self.strict = strict
        functools.update_wrapper(self, func)

    # --- schema ------------------------------------------------------------------------------
    def _build_model(self, param_docs: Mapping[str, str]) -> type[BaseModel]:
        try:
            hints = typing.get_type_hints(self.func, include_extras=True)
        except Exception as exc:
            raise ToolDefinitionError(f"tool {self.name!r}: cannot resolve type hints ({exc})") from exc
        fields: dict[str, Any] = {}
        signature = inspect.signature(self.func)
        for pname, param in signature.parameters.items():
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise ToolDefinitionError(
                    f"tool {self.name!r}: *args/**kwargs cannot be described to the model; "
                    "list the parameters explicitly"
                )
            annotation = hints.get(pname, inspect.Parameter.empty)
            if _is_context(annotation):
                self.context_param = pname
                continue
            if annotation is inspect.Parameter.empty:
                raise ToolDefinitionError(
                    f"parameter {pname!r} of tool {self.name!r} needs a type hint "
                    "(the model is told its JSON schema)"
                )
            doc = param_docs.get(pname)
            if param.default is inspect.Parameter.empty:
                info = Field(description=doc) if doc else Field()
            else:
                self.defaults[pname] = param.default
                info = Field(default=param.default, description=doc) if doc else Field(param.default)
            fields[pname] = (annotation, info)
        model_name = "".join(part.capitalize() for part in re.split(r"[_-]", self.name)) + "Args"
        return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)

    def spec(self, *, strict: bool = True) -> ToolSpec:
        """The :class:`ToolSpec` for a model; strict when asked, allowed and not opted out."""
        use_strict = strict and self.strict is not False and self.strict_parameters is not None
        params = self.strict_parameters if use_strict and self.strict_parameters else self.parameters
        return ToolSpec(self.name, self.description, params, use_strict)

    # --- calling ------------------------------------------------------------------------------
    def validate(self, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """Parse and validate the model's arguments into keyword arguments for the function.

        ``null`` for a parameter that has a default means "use the default" (in strict mode the
        model must send every parameter, so that is how it leaves one out).

        Raises:
            ToolArgumentsError: with a message meant for the model.
        """
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            data: Any = {}
        elif isinstance(arguments, str):
            try:
                data = json.loads(arguments)
            except json.JSONDecodeError as exc:
                problem = f"the arguments are not valid JSON ({exc.msg} at {exc.pos})"
                raise ToolArgumentsError(problem) from exc
        else:
            data = dict(arguments)
        if not isinstance(data, dict):
            raise ToolArgumentsError("the arguments must be a JSON object")
        data = {k: v for k, v in data.items() if not (v is None and k in self.defaults)}
        if not isinstance(arguments, str) or "null" in arguments:  # JSON without null has no None
            data = nulls_to_defaults(data, self.parameters)  # nested optional fields too
        try:
            model = self.args_model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            raise ToolArgumentsError(problems) from exc
        return {name: getattr(model, name) for name in type(model).model_fields}

    def invoke(self, kwargs: dict[str, Any], context: ToolContext | None) -> Any:
        """Call the function (returns an awaitable for async tools)."""
        if self.context_param is not None:
            if context is None:
                raise ToolError(f"tool {self.name} needs a conversation context")
            kwargs = {**kwargs, self.context_param: context}
        return self.func(**kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


@overload
def tool(func: F, /) -> Tool: ...


@overload
def tool(
    func: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a :class:`Tool`.

    Args:
        name: the name the model sees (default: the function's name).
        description: what the tool does (default: the docstring before its sections).
        strict: ``False`` to never send a strict schema; ``True`` to fail at definition time when
            the schema cannot be strict; ``None`` (default) strict whenever possible.
        timeout: seconds before the call is abandoned (default: the agent's ``tool_timeout``).

    Raises:
        ToolDefinitionError: invalid name, missing description or type hint, ``*args``.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        if isinstance(f, Tool):
            return f
        return Tool(f, name=name, description=description, strict=strict, timeout=timeout)

    return wrap(func) if func is not None else wrap


def as_tools(items: Iterable[Tool | Callable[..., Any]]) -> dict[str, Tool]:
    """Tools by name; plain functions are wrapped. Duplicate names fail here."""
    out: dict[str, Tool] = {}
    for item in items:
        t = item if isinstance(item, Tool) else Tool(item)
        if t.name in out:
            raise ToolDefinitionError(
                f"two tools are named {t.name!r}: tool names must be unique (pass name=... to @tool)"
            )
        out[t.name] = t
    return out


async def call_tool(t: Tool, kwargs: dict[str, Any], context: ToolContext | None) -> Any:
    """Run a tool: async ones on the loop, sync ones in a worker thread."""
    import asyncio

    if t.is_async:
        result = t.invoke(kwargs, context)
        return await typing.cast(Awaitable[Any], result)
    return await asyncio.to_thread(t.invoke, kwargs, context)


def render_result(result: Any) -> str:
    """A tool's return value as the text the model reads."""
    if result is None:
        return "done"
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    try:
        return _RESULT_JSON.encode(result)
    except (TypeError, ValueError):
        return str(result)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    return str(value)


#: One encoder for every tool result (json.dumps with options builds one on every call).
_RESULT_JSON = json.JSONEncoder(ensure_ascii=False, default=_json_default)


# --- docstrings ---------------------------------------------------------------------------------
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|Attributes)\s*:?\s*$",
    re.IGNORECASE,
)
_GOOGLE_PARAM = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_NUMPY_PARAM = re.compile(r"^(\w+)\s+:\s*[^:]*$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """``(summary, {param: description})`` from a Google, Sphinx or NumPy style docstring."""
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            section = "sphinx"
            i += 1
            continue
        if stripped.startswith(":") and section in (None, "sphinx"):
            section, current = "sphinx-other", None
            i += 1
            continue
        header = _SECTION.match(stripped)
        if header and not line.startswith((" ", "\t")):
            section = header.group(1).lower()
            current = None
            # NumPy underlines the header with dashes.
            if i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
                i += 1
            i += 1
            continue
        if section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters", "params"):
            indent = len(line) - len(line.lstrip())
            google = _GOOGLE_PARAM.match(line)
            numpy = _NUMPY_PARAM.match(line) if indent == 0 else None
            if numpy:
                current = numpy.group(1)
                params[current] = ""
            elif google and (current is None or indent <= _indent_of(lines, current)):
                current = google.group(1)
                params[current] = google.group(2).strip()
            elif current is not None and stripped:
                params[current] = (params[current] + " " + stripped).strip()
        elif section in ("sphinx",) and current is not None and stripped:
            params[current] = (params[current] + " " + stripped).strip()
        i += 1
    text = "\n".join(summary).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text, params


def _indent_of(lines: list[str], name: str) -> int:
    for line in lines:
        if re.match(rf"^\s*\*{{0,2}}{re.escape(name)}\s*(\([^)]*\))?\s*:", line):
            return len(line) - len(line.lstrip())
    return 0


# --- schema helpers -------------------------------------------------------------------------------
def _is_context(annotation: Any) -> bool:
    """``ToolContext``, ``ToolContext | None`` or ``Annotated[ToolContext, ...]``."""
    if annotation is ToolContext:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_context(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and args[0] is ToolContext
    return False


def _clean_schema(schema: Any) -> Any:
    """Drop pydantic's ``title`` keys (noise for the model)."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs") and isinstance(value, dict):
                out[key] = {name: _clean_schema(sub) for name, sub in value.items()}
            else:
                out[key] = _clean_schema(value)
        return out
    if isinstance(schema, list):
        return [_clean_schema(v) for v in schema]
    return schema
