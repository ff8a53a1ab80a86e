"""What both HTTP providers share: recipients, the sync/async faces, multi-part sends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx

from .. import addresses
from ..addresses import Address
from ..events import MediaRef
from ..messages import Message, Text
from ._http import Attempts, ClientOptions, Clients, Plan, RetryPolicy, exchange, run_async, run_sync
from .base import (
    InvalidRecipient,
    MediaError,
    OutcomeUnknown,
    ProviderError,
    ProviderName,
    SendReceipt,
    classify_error,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: Kept for imports of the old names; addresses are read in :mod:`eki_whatsapp.addresses`.
BSUID = addresses.BSUID
Recipient = addresses.Address


def parse_recipient(provider: str, to: str) -> Address:
    """Accept ``+5511...``, ``5511...``, ``whatsapp:+5511...`` or a BSUID (``US.1349...``)."""
    if not isinstance(to, str) or not to.strip():
        raise InvalidRecipient("'to' is empty; pass a phone number or a BSUID", provider=provider)
    address = addresses.parse(to)
    if address is not None:
        return address
    error = InvalidRecipient(
        f"'to' is {to!r}: pass an E.164 phone number ('+5511987654321', 'whatsapp:+5511...') "
        "or a business-scoped user id ('US.1349...')",
        provider=provider,
    )
    error.attempts = 0
    raise error


@dataclass(frozen=True, slots=True)
class Accepted:
    """One accepted HTTP send: the provider's id and status, and its response body."""

    message_id: str
    status: str
    raw: Mapping[str, Any]


def part_key(correlation: str | None, index: int) -> str | None:
    """The correlation key of part ``index`` (0-based) of a send: the key itself for the first
    part, ``<key>.<n>`` for the n-th after it, so a status names the part it is about."""
    if correlation is None:
        return None
    return correlation if index == 0 else f"{correlation}.{index + 1}"


def coerce(message: Message | str) -> Message:
    """A plain ``str`` is a :class:`~eki_whatsapp.messages.Text`."""
    return Text(message) if isinstance(message, str) else message


class HttpProvider:
    """Base of :class:`MetaCloud` and :class:`Twilio`: subclasses write plans, this runs them.

    Subclasses implement ``_send_plan`` and ``_download_plan``; ``send``/``send_async`` and
    ``download_media``/``download_media_async`` are the two faces of those single plans.
    """

    name: ProviderName
    #: Longest text body the provider accepts; longer ``Text`` is split into several messages.
    text_limit: int
    #: ``send`` takes ``correlation=``: a key the provider's status webhooks echo back
    #: (``StatusUpdate.correlation``), so a send whose answer was lost can be reconciled.
    correlates: bool = True

    def __init__(self, *, retry: RetryPolicy | None = None, **options: Unpack[ClientOptions]) -> None:
        self.retry = retry or RetryPolicy()
        self._clients = Clients(**options)

    # --- to implement -------------------------------------------------------------------------
    @property
    def business_number(self) -> str:
        """Identifier of the sending number."""
        raise NotImplementedError

    def _send_plan(self, to: str, message: Message, correlation: str | None = None) -> Plan[SendReceipt]:
        raise NotImplementedError

    def _download_plan(self, ref: MediaRef) -> Plan[bytes]:
        raise NotImplementedError

    # --- the two faces --------------------------------------------------------------------------
    def _run(self, plan: Plan[Any]) -> Any:
        return run_sync(plan, self._clients.sync(), self.retry.sleep)

    async def _run_async(self, plan: Plan[Any]) -> Any:
        return await run_async(plan, self._clients.async_(), self.retry.async_sleep)

    def send(self, to: str, message: Message | str, *, correlation: str | None = None) -> SendReceipt:
        """Send ``message`` (a model from :mod:`eki_whatsapp.messages`, or a ``str``) to ``to``.

        Raises a :class:`~eki_whatsapp.providers.ProviderError` subclass when the provider
        refuses it (after retrying what is retryable); ``error.attempts`` says how many tries.
        :class:`~eki_whatsapp.providers.OutcomeUnknown` when the answer was lost after the
        request left: ``correlation`` (sent with the request, see :func:`part_key`) is what its
        status webhooks will carry.
        """
        result: SendReceipt = self._run(self._send_plan(to, coerce(message), correlation))
        return result

    async def send_async(
        self, to: str, message: Message | str, *, correlation: str | None = None
    ) -> SendReceipt:
        """Async face of :meth:`send`."""
        result: SendReceipt = await self._run_async(self._send_plan(to, coerce(message), correlation))
        return result

    def download_media(self, ref: MediaRef) -> bytes:
        """The bytes of an inbound media item, fetched with this provider's credentials."""
        result: bytes = self._run(self._download_plan(ref))
        return result

    async def download_media_async(self, ref: MediaRef) -> bytes:
        """Async face of :meth:`download_media`."""
        result: bytes = await self._run_async(self._download_plan(ref))
        return result

    def close(self) -> None:
        """Close the pooled HTTP client(s) this provider made."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the pooled HTTP clients this provider made (async)."""
        await self._clients.aclose()

    def __enter__(self) -> HttpProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> HttpProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- helpers for subclasses -----------------------------------------------------------------
    def _failure(
        self,
        text: str,
        response: httpx.Response,
        data: Any,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        media: bool = False,
    ) -> ProviderError:
        """The typed error of a failed response; a plain 4xx to a media request is a MediaError."""
        status = response.status_code
        if media and code is None and 400 <= status < 500 and status not in (401, 403, 429):
            return MediaError(text, provider=self.name, http_status=status, raw=data)
        return classify_error(
            self.name,
            code,
            text,
            http_status=status,
            raw=data if isinstance(data, dict) else None,
            retry_after=retry_after,
        )

    def _send_all(
        self,
        to: str,
        kind: str,
        builds: list[Callable[[], httpx.Request]],
        parse: Callable[[httpx.Response], Accepted],
        keys: list[str | None] | None = None,
    ) -> Plan[SendReceipt]:
        """Send one or several requests (a split text) in order; one receipt for all.
        ``keys``: the correlation key each request carries (``None``: none)."""
        attempts = Attempts()
        accepted: list[Accepted] = []
        for index, build in enumerate(builds):
            try:
                result = yield from exchange(self.name, build, parse, self.retry, attempts)
            except ProviderError as error:
                # Parts already delivered are named so a caller can tell what went out.
                error.sent_message_ids = tuple(a.message_id for a in accepted)
                if isinstance(error, OutcomeUnknown) and keys is not None:
                    error.correlation = keys[index]
                raise
            accepted.append(result)
        first = accepted[0]
        raw: Mapping[str, Any] = first.raw if len(accepted) == 1 else {"parts": [a.raw for a in accepted]}
        return SendReceipt(
            provider=self.name,
            message_id=first.message_id,
            status=first.status,
            raw=raw,
            attempts=attempts.count,
            message_ids=tuple(a.message_id for a in accepted),
            to=to,
            kind=kind,
            sent_at=datetime.now(timezone.utc),
        )


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
