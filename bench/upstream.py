"""The service stand-in for the benchmark: answers a fixed page of received events, as the skeletons do.

A fixed answer keeps the service's own cost small and constant, so the numbers show what the gateway adds.
"""

from __future__ import annotations

import json
from typing import Any

BODY = json.dumps(
    {
        "items": [
            {
                "event_id": f"0b0e8e0c-7a52-4c55-9c59-0c4f2a7f5e1{n}",
                "event_type": "identification.person.registered.v1",
                "aggregate_id": f"5d7c1b8e-2f0a-4f43-8d1e-3b2a9c4e6f7{n}",
                "country": "AL",
                "received_at": "2025-01-31T10:00:00.000Z",
            }
            for n in range(3)
        ],
        "next_cursor": None,
    }
).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
