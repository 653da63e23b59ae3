"""API clients for the scale-out run (tests/support/scaleout.py): threads enrolling nodes and
reading them back, each write counted only once acknowledged (201), latencies recorded."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 4) if s else float("nan")


class ApiLoad:
    """`n` threads, each enrolling nodes and reading them back until `stop` is set. A 503 (the
    server shedding load) is waited out as its Retry-After says (at most 1 s) and the same request
    sent again; `shed` counts them, `errors` every other answer that is not 201/200."""

    def __init__(self, url: str, token: str, n: int) -> None:
        self.url, self.headers, self.stop = url, {"Authorization": f"Bearer {token}"}, threading.Event()
        self.acked: list[str] = []
        self.lat: dict[str, list[float]] = {"write": [], "read": []}  # first try to answer, 503 retries included
        self.last: dict[str, list[float]] = {"write": [], "read": []}  # the answered try alone
        self.errors: Counter[str] = Counter()
        self.shed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(n)]

    def client(self, i: int) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as cl:
            k = 0
            while not self.stop.is_set():
                name, mac = f"api-{i}-{k}", f"02:aa:{i >> 8:02x}:{i & 255:02x}:{k >> 8:02x}:{k & 255:02x}"
                k += 1
                for op in ("write", "read"):
                    t = time.monotonic()
                    while True:
                        t_try = time.monotonic()
                        try:
                            r = (cl.post("/api/v1/nodes", json={"hostname": name, "mac": mac}) if op == "write"
                                 else cl.get(f"/api/v1/nodes/{name}"))
                            code = str(r.status_code)
                        except httpx.HTTPError as exc:
                            code = type(exc).__name__
                        if code != "503" or self.stop.is_set():
                            break
                        with self.lock:
                            self.shed += 1
                        time.sleep(min(1.0, float(r.headers.get("retry-after") or 0.5)))
                    with self.lock:
                        self.lat[op].append(time.monotonic() - t)
                        self.last[op].append(time.monotonic() - t_try)
                        if code == ("201" if op == "write" else "200"):
                            if op == "write":
                                self.acked.append(name)
                        else:
                            self.errors[f"{op} {code}"] += 1
                    if op == "write" and code != "201":
                        break
