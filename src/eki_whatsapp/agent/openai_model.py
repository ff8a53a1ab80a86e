"""The OpenAI implementation of :class:`~eki_whatsapp.agent.model.ChatModel`.

Chat Completions by default (every OpenAI-compatible server has it), the Responses API with
``api="responses"``. The client is injectable (``OpenAI`` or ``AsyncOpenAI``); when the model
builds its own it sends through an ``httpx.AsyncClient``, the HTTP stack of the rest of the
library (so ``respx`` mocks it in tests). Needs the ``agent`` extra: ``pip install eki-whatsapp[agent]``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .model import Message, ModelError, ModelResponse, ModelUsage, StopReason, ToolCall, ToolChoice
from .tools import ToolSpec

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["OpenAIChatModel"]

Api = Literal["chat", "responses"]


class OpenAIChatModel:
    """A model on OpenAI, or on any OpenAI-compatible server (``base_url``).

    Args:
        model: the model id (``OPENAI_MODEL``, default ``gpt-4.1-mini``).
        client: an ``openai.OpenAI`` or ``openai.AsyncOpenAI``; built from the other arguments
            when omitted.
        api: ``"chat"`` (Chat Completions) or ``"responses"`` (Responses API).
        api_key: the key (``OPENAI_API_KEY``); a local server may accept any value.
        base_url: ``OPENAI_BASE_URL``, e.g. ``http://127.0.0.1:8000/v1`` for a local server.
        timeout: seconds per HTTP request.
        max_retries: retries the SDK makes itself on 429/5xx/timeouts (also applied to an injected
            client). Default 0: the :class:`~eki_whatsapp.agent.Agent` retries on its own, outside
            its concurrency slot and only when the wait fits in the turn (``model_retries``);
            the SDK would sleep through a ``Retry-After`` inside the call.
        params: extra request parameters (``temperature``, ``max_completion_tokens``, ...).
    """

    offline = False

    def __init__(
        self,
        model: str = "gpt-4.1-mini",
        *,
        client: Any = None,
        api: Api = "chat",
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if api not in ("chat", "responses"):
            raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
        self.name = model
        self.api: Api = api
        self.params = dict(params or {})
        self._own_client = client is None
        if client is None:
            client = _build_client(
                api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
            )
        elif callable(getattr(client, "with_options", None)):
            client = client.with_options(max_retries=max_retries)  # same connection pool
        self.client = client
        self._is_async = _is_async_client(client, api)
        self._cast = _response_types(client)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> OpenAIChatModel:
        """From ``OPENAI_API_KEY``, ``OPENAI_MODEL`` and ``OPENAI_BASE_URL``."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        kwargs.setdefault("model", settings.openai_model)
        return cls(api_key=key, base_url=settings.openai_base_url, **kwargs)

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
        parallel_tool_calls: bool = True,
    ) -> ModelResponse:
        """One model call. Errors become :class:`ModelError` (never with the key in them)."""
        if self.api == "chat":
            request = self._chat_request(messages, tools, tool_choice, parallel_tool_calls)
            create = self._post("/chat/completions", request) or self.client.chat.completions.create
        else:
            request = self._responses_request(messages, tools, tool_choice, parallel_tool_calls)
            create = self._post("/responses", request) or self.client.responses.create
        try:
            if self._is_async:
                raw = await create(**request)
            else:
                raw = await asyncio.to_thread(create, **request)
        except Exception as exc:
            raise _model_error(exc) from exc
        return self._parse_chat(raw) if self.api == "chat" else self._parse_responses(raw)

    def _post(self, path: str, request: dict[str, Any]) -> Any:
        """``create`` without the SDK's parameter transform, for an OpenAI client.

        ``create(**request)`` walks every message against the SDK's TypedDicts (aliases, file
        and date encodings) before sending: about 20 ms of event-loop time per call with a long
        history on a loaded machine, for requests that are plain JSON already. ``client.post`` is
        the SDK's public way to send a body as it is, with the same retries, errors and typed
        response.
        """
        post = getattr(self.client, "post", None)
        if self._cast is None or not callable(post):
            return None
        cast = self._cast[0 if path == "/chat/completions" else 1]
        return lambda **body: post(path, cast_to=cast, body=body)

    async def aclose(self) -> None:
        """Close the client if this model built it."""
        if self._own_client:
            result = self.client.close()
            if inspect.isawaitable(result):
                await result

    # --- Chat Completions -----------------------------------------------------------------------
    def _chat_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], choice: ToolChoice, parallel: bool
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.name, "messages": list(messages), **self.params}
        if tools:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                        **({"strict": True} if t.strict else {}),
                    },
                }
                for t in tools
            ]
            _tool_options(request, choice, parallel)
        return request

    def _parse_chat(self, raw: Any) -> ModelResponse:
        choices = getattr(raw, "choices", None) or []
        if not choices:
            raise ModelError("bad_response", "the model returned no choices")
        choice = choices[0]
        message = choice.message
        calls = tuple(
            ToolCall(c.id, c.function.name, c.function.arguments or "")
            for c in (getattr(message, "tool_calls", None) or [])
            if getattr(c, "function", None) is not None
        )
        refusal = _get(message, "refusal") or None
        finish = _get(choice, "finish_reason")
        stop: StopReason = "stop"
        if refusal:
            stop = "refusal"
        elif finish == "content_filter":
            stop = "content_filter"
        elif finish == "length":
            stop = "length"
        usage = getattr(raw, "usage", None)
        return ModelResponse(
            content=message.content,
            tool_calls=calls,
            usage=ModelUsage(
                _int(usage, "prompt_tokens"),
                _int(usage, "completion_tokens"),
                _int(_get(usage, "prompt_tokens_details"), "cached_tokens"),
            ),
            model=str(getattr(raw, "model", "") or self.name),
            metadata={"api": "chat", "id": getattr(raw, "id", None)},
            stop=stop,
            refusal=str(refusal) if refusal else None,
        )

    # --- Responses API ------------------------------------------------------------------------
    def _responses_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], choice: ToolChoice, parallel: bool
    ) -> dict[str, Any]:
        instructions: list[str] = []
        items: list[dict[str, Any]] = []
        for msg in messages:
            role = msg.get("role")
            if role in ("system", "developer"):
                instructions.append(str(msg.get("content") or ""))
            elif role == "tool":
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": msg["tool_call_id"],
                        "output": str(msg.get("content") or ""),
                    }
                )
            elif role == "assistant":
                if msg.get("content"):
                    items.append({"role": "assistant", "content": msg["content"]})
                for call in msg.get("tool_calls") or []:
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": call["id"],
                            "name": call["function"]["name"],
                            "arguments": call["function"]["arguments"],
                        }
                    )
            else:
                items.append({"role": "user", "content": msg.get("content") or ""})
        request: dict[str, Any] = {"model": self.name, "input": items, "store": False, **self.params}
        if instructions:
            request["instructions"] = "\n\n".join(instructions)
        if tools:
            request["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                    "strict": t.strict,
                }
                for t in tools
            ]
            _tool_options(request, choice, parallel)
        return request

    def _parse_responses(self, raw: Any) -> ModelResponse:
        texts: list[str] = []
        refusals: list[str] = []
        calls: list[ToolCall] = []
        for item in getattr(raw, "output", None) or []:
            kind = getattr(item, "type", None)
            if kind == "message":
                for part in getattr(item, "content", None) or []:
                    part_type = getattr(part, "type", None)
                    if part_type == "output_text":
                        texts.append(part.text)
                    elif part_type == "refusal":
                        refusals.append(str(getattr(part, "refusal", "") or ""))
            elif kind == "function_call":
                calls.append(ToolCall(item.call_id, item.name, item.arguments or ""))
        reason = _get(_get(raw, "incomplete_details"), "reason")
        stop: StopReason = "stop"
        if refusals:
            stop = "refusal"
        elif reason == "content_filter":
            stop = "content_filter"
        elif _get(raw, "status") == "incomplete":
            stop = "length"  # max_output_tokens (or another cut): the text is not complete
        usage = getattr(raw, "usage", None)
        return ModelResponse(
            content="".join(texts) or None,
            tool_calls=tuple(calls),
            usage=ModelUsage(
                _int(usage, "input_tokens"),
                _int(usage, "output_tokens"),
                _int(_get(usage, "input_tokens_details"), "cached_tokens"),
            ),
            model=str(getattr(raw, "model", "") or self.name),
            metadata={"api": "responses", "id": getattr(raw, "id", None)},
            stop=stop,
            refusal=" ".join(r for r in refusals if r) or None,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.name!r}, api={self.api!r})"


def _build_client(*, api_key: str | None, base_url: str | None, timeout: float, max_retries: int) -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the OpenAI model needs the openai package: pip install 'eki-whatsapp[agent]'"
        ) from exc
    import httpx

    if api_key is None and base_url is None:
        raise ValueError(
            "OPENAI_API_KEY is not set: set it (or OPENAI_BASE_URL for a local OpenAI-compatible "
            "server), or use the offline model (OfflineChatModel)"
        )
    return openai.AsyncOpenAI(
        api_key=api_key or "not-needed",
        base_url=base_url,
        max_retries=max_retries,
        timeout=timeout,
        # openai >= 3 accepts an httpx client as well as its own httpx2 one.
        http_client=httpx.AsyncClient(timeout=timeout, follow_redirects=True),  # type: ignore[arg-type]
    )


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK model, or of a plain dict (older SDKs keep unknown fields as dicts)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(obj: Any, name: str) -> int:
    try:
        return int(_get(obj, name) or 0)
    except (TypeError, ValueError):
        return 0


def _is_async_client(client: Any, api: Api) -> bool:
    """``AsyncOpenAI`` (awaited on the loop) or ``OpenAI`` (run in a worker thread)."""
    try:
        import openai

        if isinstance(client, openai.AsyncOpenAI):
            return True
        if isinstance(client, openai.OpenAI):
            return False
    except ImportError:  # pragma: no cover
        pass
    create = client.chat.completions.create if api == "chat" else client.responses.create
    return inspect.iscoroutinefunction(inspect.unwrap(create))


def _response_types(client: Any) -> tuple[type, type] | None:
    """The SDK's response models, when ``client`` is the openai SDK's (others: ``create``)."""
    try:
        import openai
        from openai.types.chat import ChatCompletion
        from openai.types.responses import Response
    except ImportError:  # pragma: no cover
        return None
    if isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        return ChatCompletion, Response
    return None


def _model_error(exc: Exception) -> ModelError:
    """An SDK exception as a :class:`ModelError` (status and a short reason; no key, no body)."""
    try:
        import openai
    except ImportError:  # pragma: no cover
        return ModelError("other", type(exc).__name__)
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("timeout", "the model did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ModelError("unavailable", "could not connect to the model server (OPENAI_BASE_URL?)")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        wait = _retry_after(exc)
        if status == 429:
            return ModelError(
                "rate_limited", "rate limited or out of quota (HTTP 429)", status=status, retry_after=wait
            )
        if status >= 500:
            return ModelError(
                "unavailable", f"model server error (HTTP {status})", status=status, retry_after=wait
            )
        if status in (401, 403):
            return ModelError("auth", f"refused (HTTP {status}): check OPENAI_API_KEY", status=status)
        if _error_code(exc) == "context_length_exceeded":
            return ModelError(
                "context_length",
                f"the request is over the model's context window: {_short(exc)}",
                status=status,
            )
        return ModelError("bad_request", f"request refused (HTTP {status}): {_short(exc)}", status=status)
    if isinstance(exc, ModelError):
        return exc
    return ModelError("other", f"{type(exc).__name__}: {_short(exc)}")


def _error_code(exc: Any) -> str | None:
    code = getattr(exc, "code", None)
    if code is None:
        body = getattr(exc, "body", None)
        error = body.get("error", body) if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code else None


def _retry_after(exc: Any) -> float | None:
    """Seconds from ``Retry-After`` / ``retry-after-ms`` (what the server asked to wait)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except (TypeError, ValueError):
        return None  # an HTTP date: rare from model servers; the agent's own backoff applies
    return None


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _tool_options(request: dict[str, Any], choice: Any, parallel: bool) -> None:
    """``tool_choice`` / ``parallel_tool_calls``, the same for Chat Completions and Responses."""
    if choice != "auto":  # "auto" is the API's default when tools are given
        request["tool_choice"] = choice
    if choice != "none" and not parallel:
        request["parallel_tool_calls"] = False
