"""Worker processes that never outlive the command that started them.

:func:`worker_pool` is a :class:`~concurrent.futures.ProcessPoolExecutor` whose workers

- die with their parent: on Linux the kernel sends them ``SIGKILL`` when the parent dies
  (``PR_SET_PDEATHSIG``), and everywhere a watchdog thread in each worker exits it once its
  parent is gone (its parent process id changes) — so a ``kill -9`` of a sweep leaves nothing
  running;
- ignore ``SIGINT``: Ctrl-C reaches the parent alone, which stops the pool (cancelling what
  has not started, terminating what has) and reports once, instead of one traceback per worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

_WATCH_S = 0.5
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer (runs in each worker; see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):  # Linux only; the watchdog covers the rest
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the call above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_WATCH_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool of ``workers`` (see the module docstring). On any exception leaving the
    block (Ctrl-C included) pending work is cancelled and running workers are terminated
    before the exception goes on; on success the pool shuts down normally."""
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),)
    )
    try:
        yield pool
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.terminate()
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.join(timeout=5)
        raise
    pool.shutdown(wait=True)
