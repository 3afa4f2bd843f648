"""The console's line reader on a real terminal (a pty): a Ctrl-C is never
lost, a secret is not shown, and Ctrl-D ends the input."""

from __future__ import annotations

import os
import signal

import pexpect

from tests.installer.conftest import PYTHON, REPO, cli_env

# Reads lines until the end of input, saying what each read gave.
READER = """
import sys
from hypercore_installer.prompt import read_line
secret = sys.argv[1] == "secret"
n = 0
while True:
    try:
        line = read_line("> ", secret=secret)
        print("got", repr(line), flush=True)
    except KeyboardInterrupt:
        print("caught", n, flush=True)
        n += 1
    except EOFError:
        print("end of input", flush=True)
        break
"""


def spawn(mode: str) -> pexpect.spawn:
    # Ctrl-C at its default whatever the test run inherited (a shell's background
    # job has it ignored): the reader is what is tested; the console that owns
    # the disposition sets it itself (test_auto.py).
    return pexpect.spawn(PYTHON, ["-c", READER, mode], env=cli_env(), cwd=str(REPO),
                         encoding="utf-8", timeout=10,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_ctrl_c_just_as_the_prompt_appears_is_never_lost():
    # input() loses a SIGINT that lands between writing the prompt and
    # blocking in read(): on a busy machine this lost one within a few
    # hundred tries, and the console then seemed deaf to Ctrl-C.
    child = spawn("plain")
    try:
        for n in range(2000):
            child.expect_exact("> ")
            os.kill(child.pid, signal.SIGINT)
            child.expect_exact(f"caught {n}\r\n")
        child.sendline("still reading")
        child.expect_exact("got 'still reading'")
    finally:
        child.terminate(force=True)


def test_a_secret_is_not_shown_and_the_terminal_echoes_again_afterwards():
    child = spawn("secret")
    try:
        child.expect_exact("> ")
        child.sendline("hunter2")
        child.expect_exact("got 'hunter2'")
        assert "hunter2" not in child.before        # not echoed while typed
        child.expect_exact("> ")
        child.sendintr()                            # Ctrl-C while hidden: echo comes back
        child.expect_exact("caught 0")
        child.expect_exact("> ")
        child.sendeof()
        child.expect_exact("end of input")
        child.expect(pexpect.EOF)
    finally:
        child.terminate(force=True)
    plain = spawn("plain")
    try:
        plain.expect_exact("> ")
        plain.sendline("visible")
        plain.expect_exact("visible\r\n")           # the terminal's echo, before the reader's answer
        plain.expect_exact("got 'visible'")
    finally:
        plain.terminate(force=True)
