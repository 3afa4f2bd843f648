"""The installer dialogue on the screen (tty1) of the live medium, run by
hypercore-install-console.service after hypercore-install-auto.service:

  python3 -m hypercore_installer.console [interactive options]

It shows what the unattended install did (auto.py's status), then runs
`hypercore-install interactive`, and whatever happens (cancel, error,
Ctrl-C) comes back to the dialogue: tty1 never gives a shell. After a
finished install it offers to reboot.
"""

from __future__ import annotations

import signal
import sys
import time

from hypercore.run import run

from . import auto as auto_mod
from .cli import DEFAULT_WORKDIR, main as cli_main
from .prompt import read_line

BANNER = """\
==============================================================================
 Hypercore installer
 Answer the questions to install Hypercore on this machine's disks.
 Ctrl-C cancels and starts over. The serial console has a root shell (live
 system only); the installer runs there too: hypercore-install
=============================================================================="""


def _wait_enter(prompt: str) -> bool:
    """True when Enter was pressed; False on Ctrl-C or a closed terminal."""
    try:
        read_line(prompt)
        return True
    except KeyboardInterrupt:
        print()
        return False
    except EOFError:
        time.sleep(5)           # the terminal went away: do not spin
        return False


def main(argv: list[str] | None = None) -> int:
    options = list(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGTSTP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)      # no stopping or core-dumping the console
    # Ctrl-C returns to the start of the dialogue, also when the console was
    # started with it ignored (Python then keeps it ignored: a shell's background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    dry_run = "--dry-run" in options
    workdir = options[options.index("--workdir") + 1] if "--workdir" in options[:-1] else DEFAULT_WORKDIR
    while True:
        print("\n" + BANNER)
        status = auto_mod.read_status(workdir)
        if status:
            print(status.rstrip("\n"))
        print()
        try:
            code = cli_main(["interactive", *options])
        except KeyboardInterrupt:
            code = 130
        if code == 0 and not dry_run:
            if _wait_enter("\nPress Enter to reboot into the installed system (remove the USB stick first). "):
                run(["systemctl", "reboot"])
                return 0
            continue
        _wait_enter("\nPress Enter to start the installer again. ")


if __name__ == "__main__":
    sys.exit(main())
