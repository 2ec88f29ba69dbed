"""A Ctrl-C that Python swallows is delivered again.

The KeyboardInterrupt a signal handler raises surfaces wherever the main thread happens to be.
Inside a weakref callback, a `__del__` or a garbage-collector callback (the import system's module
locks use one) Python cannot propagate it: it prints "Exception ignored in ..." with a traceback
and carries on, so one Ctrl-C would neither stop the command nor leave its one error line.
`redelivered_if_swallowed` replaces that printout with a fresh signal to the main thread a moment
later, when it is back in ordinary code, until the interrupt propagates or the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

REDELIVER_AFTER_S = 0.05  # long enough for the main thread to leave the callback


@contextlib.contextmanager
def redelivered_if_swallowed(signum: int = signal.SIGINT) -> Iterator[None]:
    """Within the block, a KeyboardInterrupt Python reports as unraisable is dropped silently and
    `signum` is sent to the main thread again; other unraisable errors print as before. Pending
    redeliveries are cancelled when the block ends."""
    previous = sys.unraisablehook
    main = threading.main_thread().ident
    pending: list[threading.Timer] = []

    def hook(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            timer = threading.Timer(REDELIVER_AFTER_S, signal.pthread_kill, (main, signum))
            timer.daemon = True
            pending.append(timer)
            timer.start()
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
        for timer in pending:
            timer.cancel()
