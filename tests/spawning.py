"""Start the processes of a two-process (gloo) test, with a deadline instead of a hang."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
import torch.distributed as dist
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


def close_process_group() -> None:
    """End a worker's process group once its DDP wrappers are deleted by the caller.

    Order matters: a ``DistributedDataParallel`` wrapper's reducer holds the gloo group,
    and a reducer freed last (at the function's or the interpreter's exit) destroys the
    group while holding the GIL; the group's destructor waits for its worker thread, which
    may be freeing a finished collective's tensors and needs the GIL for that: the process
    hangs (here about one run in five; pytorch/pytorch#56297). Collecting the
    deleted wrappers first, while the group is alive, lets ``destroy_process_group`` free
    the group through its GIL-releasing path.
    """
    gc.collect()
    dist.destroy_process_group()
