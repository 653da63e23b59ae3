"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation.

A thousand httpx clients cost more CPU than the server they load on a 2-core machine; this one
writes a request and reads a `Content-Length` response (all dgxie's API sends), nothing more.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """One keep-alive connection to HOST:PORT; reconnects on the next request after a failure."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> Reply:
        """One request; raises OSError / asyncio.IncompleteReadError if the connection fails."""
        if self._w is None:
            self._r, self._w = await asyncio.open_connection(self.host, self.port)
        assert self._r is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.extra}"
                f"Content-Length: {len(data)}\r\n")
        if body is not None:
            head += "Content-Type: application/json\r\n"
        try:
            self._w.write(head.encode() + b"\r\n" + data)
            raw = await self._r.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            payload = await self._r.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(status, headers, payload)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None
