"""A fast static Redfish fleet for the scan benchmark: the real DGX H100 capture served on N
loopback ports (one port = one BMC), with `$expand=.($levels=1)` on collections as the real
DGX H100 advertises (ProtocolFeaturesSupported.ExpandQuery), or without it (`--no-expand`: the
root stops advertising it, so clients read the 66 members one by one).

Plain asyncio protocol, pre-rendered responses, HTTP/1.1 keep-alive; no auth checks.

    python bench/bmc/fleet.py --bmcs 1000 --base-port 24000 [--no-expand]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

CAPTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "redfish" / "nvidia-dgx-h100"
EXPAND = "$expand=.($levels=1)"


def load(expand: bool) -> dict[str, bytes]:
    docs: dict[str, dict[str, Any]] = {}
    for f in CAPTURE.rglob("index.json"):
        rel = "/" + str(f.parent.relative_to(CAPTURE))
        docs[rel.rstrip("/")] = json.loads(f.read_text())
    root = docs["/redfish/v1"]
    if not expand:
        root.pop("ProtocolFeaturesSupported", None)
    out = {p: _resp(200, d) for p, d in docs.items()}
    if expand:
        for p, d in docs.items():
            if isinstance(d.get("Members"), list):
                members = [docs.get(str(m.get("@odata.id", "")).rstrip("/"), m) for m in d["Members"]]
                out[f"{p}?{EXPAND}"] = _resp(200, dict(d, Members=members))
    out["404"] = _resp(404, {"error": {"message": "not found"}})
    return out


def _resp(status: int, doc: dict[str, Any]) -> bytes:
    body = json.dumps(doc, separators=(",", ":")).encode()
    reason = b"OK" if status == 200 else b"Not Found"
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (status, reason, len(body))) + body


class Bmc(asyncio.Protocol):
    latency = 0.0  # seconds before each answer (real BMCs take tens to hundreds of ms per GET)

    def __init__(self, table: dict[str, bytes]) -> None:
        self.table, self.buf = table, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            path = head.split(b" ", 2)[1].decode("latin-1") if b" " in head else "/"
            path = path.replace("%24", "$").replace("%28", "(").replace("%29", ")").replace("%3D", "=")
            key = path.rstrip("/") if "?" not in path else path
            resp = self.table.get(key, self.table["404"])
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, self._write, resp)
            else:
                self.t.write(resp)

    def _write(self, resp: bytes) -> None:
        if not self.t.is_closing():
            self.t.write(resp)


async def main(bmcs: int, base_port: int, expand: bool, latency_ms: float) -> None:
    table = load(expand)
    Bmc.latency = latency_ms / 1000
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: Bmc(table), "127.0.0.1", base_port + i, backlog=64)
               for i in range(bmcs)]
    print(f"fleet: {bmcs} BMCs on 127.0.0.1:{base_port}-{base_port + bmcs - 1} expand={expand} "
          f"latency={latency_ms} ms", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bmcs", type=int, default=1000)
    ap.add_argument("--base-port", type=int, default=24000)
    ap.add_argument("--no-expand", action="store_true")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    a = ap.parse_args()
    asyncio.run(main(a.bmcs, a.base_port, not a.no_expand, a.latency_ms))
