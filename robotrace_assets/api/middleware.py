"""ASGI middleware: request ids, one access line per request, and the body size limit.

The access line has the method, the route template (never the query string or a body), the
status and the duration; no header is logged, so keys and signed URLs never reach the logs.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from robotrace_assets.api.context import set_request_id

log = logging.getLogger("robotrace_assets.api.access")

Scope = dict[str, Any]
Message = dict[str, Any]


class RequestContext:
    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:16]
        set_request_id(rid)
        started = time.perf_counter()
        status: dict[str, int] = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = 1
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
            too_big = declared.isdigit() and int(declared) > self.max_body_bytes
            body = None if too_big else await _read_body(receive, self.max_body_bytes)
            if body is None:
                limit = self.max_body_bytes
                await _error(send_with_id, rid, 413, f"Request body exceeds {limit} bytes.")
                return
            await self.app(scope, _replay(body, receive), send_with_id)
        except Exception as error:
            # The 500 body was already sent by the app's handler. Stop the exception here: the
            # server would log its traceback, and driver errors quote SQL parameters (bodies).
            log.error("request_id=%s unhandled %s", rid, type(error).__name__)
            if status["code"] == 500 and not status.get("sent"):
                await _error(send_with_id, rid, 500, "Internal error; retry with backoff.")
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(unmatched)"
            log.info(
                "%s %s %s %.1fms request_id=%s",
                scope.get("method"),
                path,
                status["code"],
                (time.perf_counter() - started) * 1000,
                rid,
            )


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None once it exceeds `limit` (bodies here are small JSON)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, upstream: Any) -> Any:
    """Hand the buffered body to the app, then the real channel (which reports a disconnect)."""
    sent = {"done": False}

    async def receive() -> Message:
        if sent["done"]:
            return await upstream()
        sent["done"] = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _error(send: Any, rid: str, code: int, message: str) -> None:
    body = json.dumps({"error": message, "request_id": rid}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
