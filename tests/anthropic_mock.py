"""respx for the anthropic SDK: it speaks ``httpx2``, which respx does not patch by itself.

anthropic 2.x sends requests through ``httpx2`` (a fork of httpx with its own classes), so a
plain ``respx.mock()`` never sees them. Importing this module registers a respx *mocker*
named ``"httpx2"`` that patches ``httpx2.AsyncClient``/``httpx2.Client`` the way respx's own
``"httpx"`` mocker patches httpx: each request is copied into an ``httpx.Request``, answered
by the active respx routes, and the ``httpx.Response`` is copied back. Exceptions raised by a
route's ``side_effect`` (``httpx.ReadTimeout``, ``httpx.ConnectError`` …) become the
same-named ``httpx2`` exception, so the SDK handles them as real network failures.

Usage::

    with respx.mock(using=HTTPX2) as router:
        route = router.post(MESSAGES_URL).mock(return_value=message_response("Hi"))
        ...  # code that calls AsyncAnthropic

Response builders give the Messages API's real shapes: :func:`message_response` (a
``message`` object with ``content`` blocks, ``stop_reason`` and ``usage``) and
:func:`error_response` (``{"type": "error", "error": {...}, "request_id": ...}`` with the
``request-id`` header, plus ``retry-after`` where given).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import httpx2
from respx.mocks import Mocker

__all__ = ["HTTPX2", "MESSAGES_URL", "error_response", "message_response", "request_json"]

HTTPX2 = "httpx2"
MESSAGES_URL = "https://api.anthropic.com/v1/messages"

_ids = itertools.count(1)


class Httpx2Mocker(Mocker):
    """Routes httpx2 clients' requests through the registered respx routers."""

    name = HTTPX2
    targets: ClassVar[list[str]] = ["httpx2._client.Client", "httpx2._client.AsyncClient"]
    target_methods: ClassVar[list[str]] = ["_transport_for_url"]

    @classmethod
    def mock(cls, spec: Callable[..., Any]) -> Callable[..., Any]:
        def _transport_for_url(self: object, *args: Any, **kwargs: Any) -> httpx2.MockTransport:
            return httpx2.MockTransport(cls._bridge)

        return _transport_for_url

    @classmethod
    async def _bridge(cls, request: httpx2.Request) -> httpx2.Response:
        copied = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=await request.aread(),
        )
        try:
            answer = await cls.async_handler(copied)
        except httpx.TransportError as exc:
            same = getattr(httpx2, type(exc).__name__, httpx2.TransportError)
            raise same(str(exc) or type(exc).__name__, request=request) from exc
        body = await answer.aread()
        return httpx2.Response(
            answer.status_code,
            headers=list(answer.headers.multi_items()),
            content=body,
            request=request,
        )


def message_response(
    text: str,
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-sonnet-4-5-20250929",
    input_tokens: int = 412,
    output_tokens: int = 57,
) -> httpx.Response:
    """A 200 from ``POST /v1/messages`` with one text block."""
    n = next(_ids)
    body = {
        "id": f"msg_01XFDUDYJgAACzvnptvVoY{n:02d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return httpx.Response(200, json=body, headers={"request-id": f"req_011CSHoEeqs5C35K2UUqR7F{n}"})


def error_response(
    status: int, error_type: str, message: str, *, retry_after: str | None = None
) -> httpx.Response:
    """An API error as Anthropic sends it (429 ``rate_limit_error``, 529 ``overloaded_error`` …)."""
    n = next(_ids)
    request_id = f"req_011CSHoEeqs5C35K2UUqR7E{n}"
    headers = {"request-id": request_id}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    return httpx.Response(status, json=body, headers=headers)


def request_json(request: httpx.Request) -> dict[str, Any]:
    """The JSON body a recorded request carried."""
    body = json.loads(request.content)
    assert isinstance(body, dict)
    return body
