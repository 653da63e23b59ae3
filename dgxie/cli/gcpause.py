"""`gc_paused()`: Python's cyclic garbage collector off for a block of a short-lived command.

What a CLI command allocates in bulk lives to the command's end and holds next to no garbage
cycle: the modules it imports (classes, functions, SQLAlchemy mappers, pydantic validators) and
an import's rows (each row's dict, model and values written). The collector's full passes over
them found nothing to free and cost ~0.05 s of loading a command and ~0.28 s of a 10,000-row
`dgxie node import`. Never for a server's lifetime: only around a bounded piece of work.

In a process that runs one command and exits (`FREEZE`, set by `dgxie.cli.main` when it reads
the process's own argv), everything the collector tracks is frozen at the block's end
(`gc.freeze`: its permanent generation) before it is turned on again; otherwise its first pass
walks every object the block allocated (~0.02 s after a command's imports, as much after an
import's rows). A garbage cycle made inside the block is then freed only at exit. In-process
callers (tests calling `main([...])`) get the collector back unfrozen.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE = [False]  # [0]: this process runs one command, then exits


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off for the block; after it, what is tracked frozen (with `FREEZE`) and the
    collector on again if it was on (nested blocks: the outer one turns it back on)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if FREEZE[0]:
                gc.freeze()
            gc.enable()
