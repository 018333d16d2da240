"""Start the processes of a two-process (gloo) test, with a deadline instead of a hang."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch.multiprocessing as mp

#: seconds the processes of one test may take: a few on an idle machine, far more than
#: enough under load; a rendezvous or collective that never completes fails the test
DEADLINE_S = 240.0


def spawn_or_fail(worker: Callable, args: tuple, nprocs: int) -> None:
    """``mp.spawn(worker, args, nprocs)``, failing the test (and killing the processes)
    when they are not all done within :data:`DEADLINE_S`; errors in a process raise."""
    context = mp.spawn(worker, args=args, nprocs=nprocs, join=False)
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            pytest.fail(f"{nprocs} spawned processes were not done after {DEADLINE_S:.0f} s")
