"""A running stage's progress on the terminal of `rmteacher run` and `dvc repro`.

The progress bars of a stage live in its notebook kernel, whose output goes to the executed
notebook (where `tidy_executed` drops them). So the kernel reports on a side channel instead:
when `rmteacher run` sets `RMTEACHER_PROGRESS` to a file, `start_reporter` (called by
`open_stage`) starts a thread that appends, every second, one JSON line with the cell being run
and every active tqdm bar (description, count, total, elapsed time). `Printer`, in the
`rmteacher run` process, turns the latest of them (and its own phase before the kernel starts)
into a line such as

    [rm_train 4m10s] cell 3/6 (result = rm_train.run(stage.params)); rm: 120/312 ETA 1m10s

on a terminal rewritten in place at most once a second, elsewhere printed once every
`RMTEACHER_PROGRESS_INTERVAL` seconds (default 10). Nothing of it reaches the executed notebook
or any DVC output.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

CHANNEL = "RMTEACHER_PROGRESS"
INTERVAL = "RMTEACHER_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0
REPORT_EVERY_S = 1.0
_reporter: threading.Thread | None = None


def _bars() -> list[dict]:
    """Every active, enabled tqdm bar of this process, outermost first."""
    if "tqdm" not in sys.modules:
        return []
    found = []
    for bar in sorted(list(getattr(tqdm, "_instances", [])), key=lambda b: getattr(b, "pos", 0)):
        if getattr(bar, "disable", False):
            continue
        info = bar.format_dict
        found.append(
            {
                "desc": str(info.get("prefix") or "").strip(": "),
                "n": info.get("n", 0),
                "total": info.get("total"),
                "elapsed": info.get("elapsed", 0.0),
            }
        )
    return found


def _cell() -> tuple[int | None, str]:
    """(number, line being run) of the cell the kernel is running: the line of the cell's own
    code that the main thread is in (the first line that is not an import when it cannot be
    found)."""
    try:
        from IPython import get_ipython  # only inside a kernel; absent elsewhere
    except ImportError:
        return None, ""
    shell = get_ipython()
    if shell is None:
        return None, ""
    number = shell.execution_count - 1 if shell.execution_count else None  # counted ahead
    frame = sys._current_frames().get(threading.main_thread().ident)
    line = ""
    while frame is not None:
        name = frame.f_code.co_filename
        cell_file = os.path.basename(os.path.dirname(name)).startswith("ipykernel_")
        if cell_file or name.startswith("<ipython-input"):
            line = linecache.getline(name, frame.f_lineno).strip() or line
        frame = frame.f_back
    if not line:
        source = shell.history_manager.input_hist_raw[-1] if shell.history_manager else ""
        code = [
            text.strip()
            for text in source.splitlines()
            if text.strip() and not text.startswith(("#", "import ", "from "))
        ]
        line = code[0] if code else ""
    return number, line


def start_reporter() -> None:
    """In a kernel started by `rmteacher run`: report progress to its channel file (once)."""
    global _reporter
    path = os.environ.get(CHANNEL)
    if not path or _reporter is not None:
        return

    def report():
        while True:
            try:
                number, line = _cell()
                record = {"time": time.time(), "cell": number, "code": line, "bars": _bars()}
                with open(path, "a") as stream:
                    stream.write(json.dumps(record) + "\n")
            except Exception:  # progress must never disturb the stage
                pass
            time.sleep(REPORT_EVERY_S)

    _reporter = threading.Thread(target=report, name="rmteacher-progress", daemon=True)
    _reporter.start()


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def describe_bar(bar: dict) -> str:
    """`desc: n/total ETA 1m10s` (the ETA from the bar's mean rate so far)."""
    n, total, elapsed = bar.get("n") or 0, bar.get("total"), bar.get("elapsed") or 0.0
    text = f"{bar['desc']}: {n:g}" if bar.get("desc") else f"{n:g}"
    if total:
        text += f"/{total:g}"
        if n and elapsed:
            text += f" ETA {duration((total - n) * elapsed / n)}"
    return text


class Printer:
    """The `rmteacher run` side: tails the channel file and prints the progress line."""

    def __init__(self, stage: str, channel: Path, cells: int, stream=None):
        self.stage, self.channel, self.cells = stage, Path(channel), cells
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = 1.0 if self.tty else float(os.environ.get(INTERVAL, DEFAULT_INTERVAL_S))
        self.phase = "starting"
        self.started = time.monotonic()
        self.latest: dict | None = None
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rmteacher-printer", daemon=True)
        self._shown = False

    def start(self) -> Printer:
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            with self.channel.open() as stream:
                stream.seek(self._offset)
                lines = stream.readlines()
                self._offset = stream.tell()
        except OSError:
            return
        for line in lines:
            try:
                self.latest = json.loads(line)
            except json.JSONDecodeError:
                continue

    def line(self) -> str:
        """What the stage is doing now."""
        text = f"[{self.stage} {duration(time.monotonic() - self.started)}] {self.phase}"
        record = self.latest if self.phase == "running the notebook" else None
        if self.phase == "running the notebook" and record is None:
            text = text.rsplit("] ", 1)[0] + "] starting the kernel"
        if record:
            if record.get("cell"):
                text = text.rsplit("] ", 1)[0] + f"] cell {record['cell']}/{self.cells}"
                if record.get("code"):
                    text += f" ({record['code'][:60]})"
            bars = [describe_bar(bar) for bar in record.get("bars", [])]
            if bars:
                text += "; " + "; ".join(bars)
        return text

    def _loop(self) -> None:
        next_line = time.monotonic() + self.interval
        while not self._stop.wait(0.2):
            self._read()
            if time.monotonic() >= next_line:
                self._show(self.line())
                next_line = time.monotonic() + self.interval

    def _show(self, text: str) -> None:
        try:
            if self.tty:
                self.stream.write("\r\x1b[K" + text[: os.get_terminal_size().columns - 1])
                self._shown = True
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Stop printing; on a terminal, clear the status line."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self.tty and self._shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
