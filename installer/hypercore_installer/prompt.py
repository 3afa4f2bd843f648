"""Reading a typed line on the console without losing a Ctrl-C.

input() writes the prompt, then blocks in read(). A SIGINT that lands
between the two (the operator presses Ctrl-C just as the question appears,
more likely on a busy machine) only raises KeyboardInterrupt once a whole
line has been typed: Ctrl-C seems to do nothing. read_line() waits in
select() on the terminal and on the signal wakeup pipe instead, so a signal
that arrives before the wait still ends it.
"""

from __future__ import annotations

import getpass
import os
import select
import signal
import sys
import termios


def read_line(prompt: str, secret: bool = False) -> str:
    """Like input(prompt), or getpass.getpass(prompt) when secret (nothing
    typed is shown): the line without its newline; EOFError at the end of
    input; KeyboardInterrupt for a Ctrl-C at any moment."""
    stdin = sys.stdin
    if not stdin.isatty():
        return getpass.getpass(prompt) if secret else input(prompt)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    echoing = termios.tcgetattr(stdin)
    if secret:
        quiet = list(echoing)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(stdin, termios.TCSAFLUSH, quiet)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    try:
        while True:
            ready, _, _ = select.select([stdin, wake_r], [], [])
            if stdin in ready:
                break
            os.read(wake_r, 512)        # a signal whose handler raised nothing (SIGWINCH, ...)
        line = stdin.readline()
    finally:
        signal.set_wakeup_fd(old)
        os.close(wake_r)
        os.close(wake_w)
        if secret:
            termios.tcsetattr(stdin, termios.TCSAFLUSH, echoing)
            sys.stdout.write("\n")             # the Enter was not echoed either
            sys.stdout.flush()
    if not line:
        raise EOFError
    return line.removesuffix("\n")
