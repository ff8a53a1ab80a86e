"""A scripted OpenAI-compatible server on 127.0.0.1: Chat Completions and Responses API.

One script drives both wire formats: a step says *what* the model does (answer, call tools,
refuse, get cut off, fail with an HTTP error) and the server renders it the way the API the
request came to would (``POST /v1/chat/completions`` or ``POST /v1/responses``)::

    with FakeOpenAI() as server:
        server.script(FakeOpenAI.tools(("find_course", {"topic": "python"})), FakeOpenAI.answer("Done."))
        agent = Agent("...", [find_course], client=openai.AsyncOpenAI(base_url=server.url, api_key="x"))

Like the real API it refuses requests it would refuse: a tool result without its call, a strict
tool schema outside the structured-outputs subset (``'oneOf' is not permitted``), a body over
``context_limit`` (``context_length_exceeded``), text that is not valid Unicode. Every request is
recorded (:attr:`requests`), with the number of calls in flight at once (:attr:`max_in_flight`);
``hold()``/``release()`` keep answers waiting so concurrency can be observed without sleeps.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._http import LocalServer, RawRequest, Reply

__all__ = ["FakeOpenAI", "ModelRequest", "Step", "strict_schema_problems"]


@dataclass(frozen=True, slots=True)
class Step:
    """What the fake model does for one request. Build with the :class:`FakeOpenAI` helpers."""

    kind: str  # answer | tools | refuse | filtered | truncated | error
    text: str | None = None
    calls: tuple[tuple[str, Any], ...] = ()
    status: int = 200
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """A request the fake received: which API, the parsed body and its size in bytes."""

    api: str  # "chat" | "responses"
    body: dict[str, Any]
    size: int
    status: int = 200

    @property
    def texts(self) -> list[tuple[str, str]]:
        """``(role, text)`` of every message / input item, in order (tool results as ``tool``)."""
        out: list[tuple[str, str]] = []
        if self.api == "chat":
            for msg in self.body.get("messages", []):
                out.append((str(msg.get("role")), _text(msg.get("content"))))
        else:
            if self.body.get("instructions"):
                out.append(("system", str(self.body["instructions"])))
            for item in self.body.get("input", []):
                if item.get("type") == "function_call_output":
                    out.append(("tool", str(item.get("output", ""))))
                elif item.get("type") == "function_call":
                    out.append(("assistant", ""))
                else:
                    out.append((str(item.get("role")), _text(item.get("content"))))
        return out

    @property
    def last_user_text(self) -> str:
        """The text of the last user message."""
        return next((t for role, t in reversed(self.texts) if role == "user"), "")

    @property
    def tool_results(self) -> list[str]:
        """Tool results sent back to the model, in order."""
        return [t for role, t in self.texts if role == "tool"]

    @property
    def ends_with_tool_result(self) -> bool:
        """Whether the last item is a tool result (the model is to use it)."""
        texts = self.texts
        return bool(texts) and texts[-1][0] == "tool"

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered."""
        return [t.get("name") or t.get("function", {}).get("name") for t in self.body.get("tools", [])]


Responder = Callable[[ModelRequest], "Step | None"]


class FakeOpenAI(LocalServer):
    """An OpenAI-compatible API on ``127.0.0.1`` (``url`` is the ``base_url`` for the SDK).

    Args:
        responder: decides a :class:`Step` per request when the script is empty (default: answer
            ``"echo: <last user text>"``, or ``"ok: <result>"`` right after a tool result).
        latency: seconds every answer takes (a model's think time, for benchmarks).
        context_limit: request bodies over this many bytes fail with ``context_length_exceeded``.
        model: the model id reported in answers.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        context_limit: int | None = None,
        model: str = "gpt-4.1-mini-2025-04-14",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.responder = responder
        self.latency = latency
        self.context_limit = context_limit
        self.model = model
        self.requests: list[ModelRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._steps: deque[Step] = deque()
        self._cond = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        self._ids = itertools.count(1)
        super().__init__(self._handle, host, port, max_body=64 << 20)

    # --- scripting ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the SDK's ``base_url`` (``OPENAI_BASE_URL``)."""
        return self.base_url + "/v1"

    def script(self, *steps: Step) -> None:
        """Queue steps; each request takes the next one (then the responder decides)."""
        with self._cond:
            self._steps.extend(steps)

    @staticmethod
    def answer(text: str, *, delay: float = 0.0) -> Step:
        """A final answer."""
        return Step("answer", text, delay=delay)

    @staticmethod
    def tools(*calls: tuple[str, Any]) -> Step:
        """Tool calls: ``("name", {"arg": 1})`` each (arguments may be a raw JSON string)."""
        return Step("tools", calls=tuple(calls))

    @staticmethod
    def refuse(text: str = "I'm sorry, I can't help with that.") -> Step:
        """A refusal (Chat ``message.refusal``; Responses ``refusal`` content part)."""
        return Step("refuse", text)

    @staticmethod
    def filtered(text: str | None = None) -> Step:
        """Stopped by the content filter (``finish_reason=content_filter`` / incomplete)."""
        return Step("filtered", text)

    @staticmethod
    def truncated(text: str) -> Step:
        """An answer cut at the output-token limit (``finish_reason=length`` / incomplete)."""
        return Step("truncated", text)

    @staticmethod
    def error(
        status: int, message: str = "error", *, code: str | None = None, retry_after: float | None = None
    ) -> Step:
        """An HTTP error in the API's error shape (``Retry-After`` header when given)."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return Step("error", message, status=status, code=code, headers=headers)

    # --- observing -------------------------------------------------------------------------------
    def hold(self) -> None:
        """Keep every answer waiting until :meth:`release` (requests are still recorded)."""
        self._gate.clear()

    def release(self) -> None:
        """Let held answers go."""
        self._gate.set()

    def wait_for(self, predicate: Callable[[FakeOpenAI], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (checked on every request start and end)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests have arrived."""
        return self.wait_for(lambda s: len(s.requests) >= count, timeout)

    # --- serving -------------------------------------------------------------------------------
    def _handle(self, raw: RawRequest) -> Reply:
        if raw.method != "POST" or raw.path.rstrip("/") not in ("/v1/chat/completions", "/v1/responses"):
            return _error(404, f"unknown path {raw.path}", "invalid_request_error", None)
        api = "chat" if raw.path.rstrip("/").endswith("/chat/completions") else "responses"
        try:
            body = json.loads(raw.body.decode("utf-8"))
            json.dumps(body, ensure_ascii=False).encode("utf-8")  # lone surrogates
        except (UnicodeError, ValueError):
            return self._record(
                api, {}, raw, _error(400, "We could not parse the JSON body of your request.")
            )
        problem = _request_problem(api, body)
        if problem:
            return self._record(api, body, raw, _error(400, problem))
        with self._cond:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()
        try:
            request = ModelRequest(api, body, len(raw.body))
            with self._cond:
                step = self._steps.popleft() if self._steps else None
            if step is None:
                step = (self.responder or _default_responder)(request) or _default_responder(request)
            self._gate.wait()
            if self.latency or step.delay:
                time.sleep(self.latency + step.delay)
            if self.context_limit is not None and len(raw.body) > self.context_limit:
                reply = _context_error(api, len(raw.body))
            elif step.kind == "error":
                reply = _error(step.status, step.text or "error", code=step.code, headers=step.headers)
            else:
                reply = Reply(200, {"Content-Type": "application/json"}, self._render(api, step, body))
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()
        return self._record(api, body, raw, reply)

    def _record(self, api: str, body: dict[str, Any], raw: RawRequest, reply: Reply) -> Reply:
        with self._cond:
            self.requests.append(ModelRequest(api, body, len(raw.body), reply.status))
            self._cond.notify_all()
        return reply

    def _render(self, api: str, step: Step, request: Mapping[str, Any]) -> bytes:
        n = next(self._ids)
        usage_in = max(1, len(json.dumps(request)) // 4)
        usage_out = max(1, len(step.text or "") // 4)
        if api == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
            finish = "stop"
            if step.kind == "tools":
                message["tool_calls"] = [
                    {
                        "id": f"call_{n}_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": _args(a)},
                    }
                    for i, (name, a) in enumerate(step.calls)
                ]
                finish = "tool_calls"
            elif step.kind == "refuse":
                message["refusal"] = step.text
            else:
                message["content"] = step.text
                finish = {"filtered": "content_filter", "truncated": "length"}.get(step.kind, "stop")
            chat = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "finish_reason": finish, "message": message, "logprobs": None}],
                "usage": {
                    "prompt_tokens": usage_in,
                    "completion_tokens": usage_out,
                    "total_tokens": usage_in + usage_out,
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
            }
            return json.dumps(chat).encode()
        output: list[dict[str, Any]] = []
        status, incomplete = "completed", None
        if step.kind == "tools":
            for i, (name, a) in enumerate(step.calls):
                output.append(
                    {
                        "type": "function_call",
                        "id": f"fc_{n}_{i}",
                        "call_id": f"call_{n}_{i}",
                        "name": name,
                        "arguments": _args(a),
                        "status": "completed",
                    }
                )
        else:
            if step.kind == "refuse":
                part: dict[str, Any] = {"type": "refusal", "refusal": step.text}
            else:
                part = {"type": "output_text", "text": step.text or "", "annotations": []}
            if step.kind == "filtered":
                status, incomplete = "incomplete", {"reason": "content_filter"}
            elif step.kind == "truncated":
                status, incomplete = "incomplete", {"reason": "max_output_tokens"}
            if step.text is not None or step.kind == "refuse":
                output.append(
                    {
                        "type": "message",
                        "id": f"msg_{n}",
                        "role": "assistant",
                        "status": status,
                        "content": [part],
                    }
                )
        response = {
            "id": f"resp_{n}",
            "object": "response",
            "created_at": int(time.time()),
            "model": self.model,
            "status": status,
            "incomplete_details": incomplete,
            "error": None,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": usage_in,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage_out,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage_in + usage_out,
            },
        }
        return json.dumps(response).encode()

    def __repr__(self) -> str:
        return f"FakeOpenAI({self.url})"


def _default_responder(request: ModelRequest) -> Step:
    if request.ends_with_tool_result:
        return FakeOpenAI.answer("ok: " + request.tool_results[-1][:200])
    return FakeOpenAI.answer("echo: " + request.last_user_text)


def _args(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    if status == 429:
        kind = "rate_limit_exceeded" if code is None else kind
    elif status >= 500:
        kind = "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Reply(
        status, {"Content-Type": "application/json", **dict(headers or {})}, json.dumps(body).encode()
    )


def _context_error(api: str, size: int) -> Reply:
    if api == "chat":
        message = (
            f"This model's maximum context length is 128000 tokens. However, your messages resulted in "
            f"{size // 4} tokens. Please reduce the length of the messages."
        )
    else:
        message = (
            "Your input exceeds the context window of this model. Please adjust your input and try again."
        )
    return _error(400, message, code="context_length_exceeded")


# --- what the real API refuses ----------------------------------------------------------------------
def _request_problem(api: str, body: Mapping[str, Any]) -> str | None:
    if not body.get("model"):
        return "you must provide a model parameter"
    for t in body.get("tools") or []:
        fn = t.get("function", t) if api == "chat" else t
        if fn.get("strict"):
            for problem in strict_schema_problems(fn.get("parameters") or {}):
                return f"Invalid schema for function '{fn.get('name')}': {problem}"
    if api == "chat":
        pending: set[str] = set()
        for msg in body.get("messages") or []:
            role = msg.get("role")
            if role == "tool":
                if msg.get("tool_call_id") not in pending:
                    return (
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                        "message with 'tool_calls'."
                    )
                pending.discard(msg.get("tool_call_id"))
                continue
            if pending:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages responding "
                    f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    f"{', '.join(sorted(pending))}"
                )
            if role == "assistant":
                pending = {c.get("id") for c in msg.get("tool_calls") or []}
        if pending:
            return "tool_call_ids did not have response messages: " + ", ".join(sorted(pending))
    else:
        calls = {i.get("call_id") for i in body.get("input") or [] if i.get("type") == "function_call"}
        for item in body.get("input") or []:
            if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
                return f"No tool call found for function call output with call_id {item.get('call_id')}."
    return None


#: String formats the structured-outputs subset accepts (see :func:`strict_schema_problems`).
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_STRICT_KEYWORDS = frozenset(
    {
        "type",
        "description",
        "title",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "pattern",
        "format",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "minItems",
        "maxItems",
    }
)


def strict_schema_problems(schema: Mapping[str, Any]) -> list[str]:
    """What the API would refuse in a ``strict: true`` function schema (empty when accepted).

    The rules of the structured-outputs subset as OpenAI documents them
    (https://platform.openai.com/docs/guides/structured-outputs#supported-schemas): the root is
    an object (not ``anyOf``); every object lists all its properties in ``required`` and sets
    ``additionalProperties: false``; the keywords are ``type``, ``properties``, ``items``,
    ``enum``, ``anyOf``, ``$ref``/``$defs``, ``pattern``, ``format`` (date-time, time, date,
    duration, email, hostname, ipv4, ipv6, uuid), the numeric bounds and ``minItems``/``maxItems``;
    ``oneOf``, ``allOf``, ``not``, ``discriminator``, ``default``, ``minLength``/``maxLength``,
    ``uniqueItems``, ``patternProperties``... are not; at most 10 levels of nesting, 5000
    properties and 1000 enum values.
    """
    problems: list[str] = []
    if schema.get("type") != "object" or "anyOf" in schema:
        problems.append(
            "schema must be a JSON Schema of 'type: \"object\"' and not have 'anyOf' at the top level"
        )
    counts = {"properties": 0, "enum": 0}

    def walk(node: Any, where: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, Mapping):
            return
        context = f"In context={where!r}, " if where else ""
        for key in node:
            if key not in _STRICT_KEYWORDS:
                problems.append(f"{context}'{key}' is not permitted.")
        if "format" in node and node["format"] not in STRICT_FORMATS:
            problems.append(f"{context}'format' {node['format']!r} is not permitted.")
        if "$ref" in node and len(node) > 1 and set(node) - {"$ref"}:
            problems.append(
                f"{context}$ref cannot have keywords {{{', '.join(sorted(set(node) - {'$ref'}))}}}."
            )
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "object" in kinds or "properties" in node:
            if depth > 10:
                problems.append(f"{context}objects nest more than 10 levels.")
            props = node.get("properties")
            if not isinstance(props, Mapping):
                problems.append(f"{context}an object needs 'properties'.")
                props = {}
            if node.get("additionalProperties") is not False:
                problems.append(
                    f"{context}'additionalProperties' is required to be supplied and to be false."
                )
            missing = [p for p in props if p not in (node.get("required") or [])]
            if missing:
                problems.append(
                    f"{context}'required' is required to include every property. Missing {missing!r}."
                )
            counts["properties"] += len(props)
            for name, sub in props.items():
                walk(sub, (*where, "properties", name), depth + 1)
        if isinstance(node.get("enum"), list):
            counts["enum"] += len(node["enum"])
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], (*where, "items"), depth)
        for i, sub in enumerate(node.get("anyOf") or []):
            walk(sub, (*where, "anyOf", str(i)), depth)
        for key in ("$defs", "definitions"):
            for name, sub in (node.get(key) or {}).items():
                walk(sub, (*where, key, name), depth)

    walk(schema, (), 1)
    if counts["properties"] > 5000:
        problems.append("a schema may have at most 5000 object properties in total.")
    if counts["enum"] > 1000:
        problems.append("a schema may have at most 1000 enum values in total.")
    return problems
