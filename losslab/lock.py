"""One run per run folder: an exclusive lock held for the run's lifetime.

Two runs started into the same folder (same seed and overrides, or the same
``run_dir=``) would otherwise write each other's checkpoints and report each other's
model. :class:`RunLock` takes ``fcntl.flock`` on ``<run folder>/.lock`` and keeps the
file open until the run ends. The kernel drops a flock when its process dies (a crash,
SIGKILL, a preempted job), so a lock left by a dead run is never an obstacle: the
next run takes it and notes in the log that the previous holder is gone. The file
records the holder (pid, host, start time, command) so that a refused run can say who
holds the folder. flock is advisory and local: on a network file system that does not
support it, locking is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from losslab.config import ConfigError

LOCK_FILE = ".lock"

log = logging.getLogger("losslab")


class RunLock:
    """``with RunLock(run_dir):`` the body runs holding the folder's lock, or ConfigError."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (the folder must exist); ConfigError naming the holder if taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise ConfigError(
                f"{self.run_dir} is in use by another run ({holder}); two runs in one folder "
                f"would overwrite each other's checkpoints and metrics. Wait for it to end, "
                f"or choose another folder with run_dir=<folder> (or another seed)."
            ) from None
        except OSError as error:
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            log.warning(
                "cannot lock %s (%s): runs in this folder are not guarded", self.path, error
            )
        previous = _read(fd)
        if previous:
            log.info("took over the lock of a run that has ended (%s)", _describe(previous))
        _write(fd, {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": " ".join(sys.argv),
        })  # fmt: skip
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the file and drop the lock (the file stays: removing it would race)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 65536).decode(errors="replace").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def _write(fd: int, record: dict) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)


def _describe(record: dict) -> str:
    if not record:
        return "holder unknown"
    return (
        f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started "
        f"{record.get('started', '?')}: {record.get('command', '')}".rstrip(": ")
    )
