"""A log that cannot be flooded (pure; used by the DHCP and TFTP servers for refused packets).

Anyone on the provisioning network can send garbage to port 67 or 69 as fast as the wire allows;
one log line per bad packet would turn that into a disk-filling attack (10,000 bad TFTP requests
once gave 2,262 lines). `RateLimitedLog` writes at most one line per `every` seconds:

- the first refusal after a quiet period is logged at once, with its detail (what an operator
  debugging one client needs);
- the refusals that follow within the period are only counted, by reason, and one summary line
  with those counts and the latest detail is written when the period ends (a timer on the running
  event loop), which opens the next period.

So a flood of any length costs one line per period. Counts left at shutdown are dropped with the
timer (the metrics have them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter


class RateLimitedLog:
    """`hit(reason, detail)` for each refused packet; at most one line per `every` seconds."""

    def __init__(self, logger: logging.Logger, what: str, every: float = 10.0, level: int = logging.WARNING) -> None:
        self.logger, self.what, self.every, self.level = logger, what, every, level
        self.lines = 0  # lines written (tests and the metrics read it)
        self._window_end = 0.0
        self._pending: Counter[str] = Counter()
        self._latest = ""
        self._timer: asyncio.TimerHandle | None = None

    def hit(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        if now >= self._window_end and not self._pending:
            self._write("%s: %s", self.what, detail)
            self._window_end = now + self.every
            return
        self._pending[reason] += 1
        self._latest = detail
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a test calling it directly): summarise on the next hit
                if now >= self._window_end:
                    self._summary()
                return
            self._timer = loop.call_later(max(0.0, self._window_end - now), self._summary)

    def _summary(self) -> None:
        self._timer = None
        if not self._pending:
            return
        n = sum(self._pending.values())
        reasons = ", ".join(f"{r}: {k}" for r, k in self._pending.most_common())
        self._write("%s: %d more in the last %.0f s (%s); latest: %s", self.what, n, self.every, reasons,
                    self._latest)
        self._pending.clear()
        self._window_end = time.monotonic() + self.every

    def _write(self, fmt: str, *args: object) -> None:
        self.lines += 1
        self.logger.log(self.level, fmt, *args)

    def close(self) -> None:
        """Cancel the pending summary (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
