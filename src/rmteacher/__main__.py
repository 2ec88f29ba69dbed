"""`python -m rmteacher` and the `rmteacher` command. Ctrl-C or SIGTERM while the command is
still importing is one line too (exit 130); `cli.main` takes over once it runs."""

import os
import signal
import sys


def _starting(signum, frame):
    sys.stderr.write("error: rmteacher interrupted while starting; nothing was written\n")
    os._exit(130)


def run() -> int:
    signal.signal(signal.SIGINT, _starting)
    signal.signal(signal.SIGTERM, _starting)
    from rmteacher.cli import main  # ~0.3 s of imports, under the handlers set above

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
