"""A stage never outlives the command that started it.

`bind_to_parent` makes the current process receive SIGTERM when its parent exits (Linux
`prctl(PR_SET_PDEATHSIG)`) and, since DVC may start a stage through a shell, also watches every
process between it and the nearest `dvc` ancestor: when one of them is gone (even killed with
SIGKILL, which no handler sees), it sends itself SIGTERM, which stops the stage the way Ctrl-C
does (kernel shut down, nothing half-written left looking done). The kernel follows its own
parent, `rmteacher run`, through ipykernel's parent poller.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from pathlib import Path

PR_SET_PDEATHSIG = 1
POLL_S = 0.5
_lost: list[str] = []  # what died, for the message
_parent: list[int] = []  # the parent when bound


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[1]), fields[19]


def _is_dvc(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(a.decode(errors="replace")) for a in argv[:3]]
    return "dvc" in names or (len(argv) > 2 and argv[1] == b"-m" and argv[2] == b"dvc")


def watched_ancestors() -> list[tuple[int, str, str]]:
    """[(pid, start time, name)] from the parent up to the nearest dvc process when DVC runs
    this command (`DVC_STAGE` is set), else the parent alone."""
    chain, pid = [], os.getppid()
    while pid > 1:
        info = _stat(pid)
        if info is None:
            break
        dvc = _is_dvc(pid)
        chain.append((pid, info[1], "dvc" if dvc else "parent"))
        if dvc or "DVC_STAGE" not in os.environ:
            return chain
        pid = info[0]
    return chain[:1]


def lost_parent() -> str | None:
    """What exited, if this process was stopped because its parent (or its dvc) did."""
    if _lost:
        return _lost[0]
    if _parent and os.getppid() != _parent[0]:
        return f"its parent process (pid {_parent[0]}) exited"
    return None


def bind_to_parent() -> None:
    """SIGTERM to this process when its parent (or any process up to its dvc) exits."""
    _parent[:] = [os.getppid()]
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    chain = watched_ancestors()
    if not chain:
        return

    def watch():
        stop = threading.Event()
        while not stop.wait(POLL_S):
            for pid, started, name in chain:
                info = _stat(pid)
                if info is None or info[1] != started:
                    _lost.append(f"its {name} process (pid {pid}) exited")
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

    threading.Thread(target=watch, name="rmteacher-lifeline", daemon=True).start()
