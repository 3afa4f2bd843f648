"""Errors that are the user's to fix: one line of what, one line of how."""

from __future__ import annotations

import sys


class UserError(Exception):
    """An expected failure: bad input, a missing tool, a refused disk.

    Printed as ``hypercore: <message>`` plus ``  hint: <hint>``, never as a
    traceback. Raise it before changing anything.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ProblemsError(UserError):
    """Several problems found at once: a headline, then one indented line each."""

    def __init__(self, headline: str, items, hint: str | None = None):
        super().__init__(headline + "\n" + "\n".join(f"  {item}" for item in items), hint=hint)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def report(err: UserError, prog: str = "hypercore") -> int:
    """Print a UserError for the console and return the exit code 1."""
    print(f"{prog}: {err.message}", file=sys.stderr)
    if err.hint:
        print(f"  hint: {err.hint}", file=sys.stderr)
    return 1
