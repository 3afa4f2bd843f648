"""The machine as the first-boot steps see it: the installer's Runner (every
command through hypercore.run.run, atomic file writes) plus what a bootstrap
also needs: command timeouts, file ownership, reading files, the clock, TCP reachability.

Unit tests replace it by a fake that answers commands from a script."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence

from hypercore.run import CommandError, run

from ..runner import Runner


class Host(Runner):
    """This machine, for real."""

    def run(self, argv: Sequence[str], *, input: str | None = None, ok: Sequence[int] = (0,),
            secret: bool = False, env: dict | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run argv; exit codes in `ok` are success, anything else (or the
        timeout) is a CommandError carrying stderr. Output is never logged;
        `secret` marks a command whose output holds a key: a failure then
        keeps only its stderr."""
        proc = run(argv, input=input, check=False, env=env, timeout=timeout)
        if proc.returncode not in ok:
            raise CommandError(argv, proc.returncode, "" if secret else proc.stdout or "", proc.stderr or "")
        return proc

    def read_text(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def chown(self, path: str, user: str) -> None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)

    def owner(self, path: str) -> str | None:
        try:
            return pwd.getpwuid(os.stat(path).st_uid).pw_name
        except (FileNotFoundError, KeyError):
            return None

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def hostname(self) -> str:
        return os.uname().nodename

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def can_connect(self, host: str, port: int, timeout: float = 3.0) -> bool:
        """Whether something accepts a TCP connection at host:port."""
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False
