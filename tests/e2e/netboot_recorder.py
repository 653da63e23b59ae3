"""Callback recorder for the VM e2e test: logs `<unix-time> <client-ip> <path?query>` per GET.

Run inside the server namespace: `python3 netboot_recorder.py HOST PORT LOGFILE`. Stands in for
the installer's "I am up" callback, which is not part of the network-boot area.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with open(sys.argv[3], "a") as f:
            f.write(f"{time.time():.3f} {self.client_address[0]} {self.path}\n")
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
