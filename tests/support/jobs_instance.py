"""One dgxie instance for the multi-instance job tests, as a real process:

    python -m tests.support.jobs_instance CONFIG OUTDIR

Wires the context exactly as `dgxie serve` does (`build_context`, the config's `instance:`
section), registers the test kind `test.work` and runs the context's background services until
SIGTERM (or SIGKILL). A `test.work` job sleeps `payload["seconds"]` in small steps (stopping early,
`check()`, if cancelled), then appends "JOB_ID INSTANCE_ID" to OUTDIR/done.log (O_APPEND: one line per
completed execution, whoever ran it); it appends the same to OUTDIR/started.log when it starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from dgxie import config
from dgxie.background import Supervisor
from dgxie.compose import build_context
from dgxie.jobs.worker import JobHandle


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(cfg: str, outdir: str) -> None:
    settings = config.load(cfg)
    ctx = build_context(settings, migrate=False)
    out, me = Path(outdir), settings.instance.id

    def work(job: JobHandle) -> None:
        _append(out / "started.log", f"{job.id} {me}\n")
        end = time.monotonic() + float(job.payload.get("seconds", 0))
        while time.monotonic() < end:
            job.check()  # raises Stopped: cancelled, or this instance is stopping (the job goes back)
            time.sleep(0.02)
        _append(out / "done.log", f"{job.id} {me}\n")

    ctx.job_kinds.register("test.work", work)

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        sup = Supervisor(ctx.services)
        await sup.start()
        (out / f"ready-{me}").touch()
        await stop.wait()
        await sup.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
