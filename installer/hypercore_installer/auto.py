"""`hypercore-install auto`: the live medium's unattended install, run once at
boot by hypercore-install-auto.service.

Finds an answer file (sources.py: kernel command line URL, systemd credential,
filesystem labelled HYPERCORE). None found: says that the dialogue runs on
tty1 and exits 0. Found: says where from, validates it (every problem, then
exit 1: nothing is installed), then does exactly what `apply FILE --yes` does
(the plan first; the answer file is the consent), then acts on the file's
`after_install` (reboot, poweroff or none).

An unattended install runs at most once per live boot: a marker in the
workdir (/run, so a reboot clears it) refuses a second one. A short status
for the tty1 dialogue (console.py) is left next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hypercore.errors import UserError, report
from hypercore.files import write_atomic
from hypercore.run import CommandError, run

from . import answers as answers_mod
from . import sources
from .journal import DEFAULT_PATH

JOURNAL = DEFAULT_PATH.name

PROG = "hypercore-install"
MARKER = "auto.json"              # {"state": "started"|"installed", "from": ..., "target": ...}
STATUS = "auto-status.txt"        # shown by the tty1 dialogue before its first question
ANSWERS_COPY = "auto-answers.yaml"
AFTER_INSTALL = ("reboot", "poweroff", "none")

NOTHING_FOUND = ("The interactive installer is running on tty1 (the screen); on the serial console "
                 "start it with: hypercore-install")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `auto` (cli.py adds the install options shared with apply)."""
    p.add_argument("--cmdline", metavar="FILE", default="/proc/cmdline",
                   help="read the kernel command line from FILE instead of /proc/cmdline (to try one out)")
    p.add_argument("--also-to", metavar="TTY", action="append", default=[],
                   help="also write everything to this terminal (the unit passes /dev/tty1, the screen)")
    p.add_argument("--credentials-dir", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--label", default=sources.LABEL, help=argparse.SUPPRESS)
    p.add_argument("--fetch-timeout", type=float, default=sources.FETCH_DEADLINE, help=argparse.SUPPRESS)
    p.add_argument("--reboot-delay", type=float, default=10.0, help=argparse.SUPPRESS)


# --- state of this live boot ----------------------------------------------------

class BootState:
    """The marker and status files in the workdir. A dry run reads them (a
    refused second run shows) but never writes."""

    def __init__(self, workdir: str | os.PathLike, dry_run: bool):
        self.dir = Path(workdir)
        self.dry_run = dry_run

    @property
    def marker(self) -> Path:
        return self.dir / MARKER

    @property
    def answers_copy(self) -> Path:
        return self.dir / ANSWERS_COPY

    def resume_hint(self) -> str:
        return (f"fix the cause, then resume it on the serial console with: hypercore-install apply "
                f"{self.answers_copy} --yes (it continues from its journal); or reboot to start over")

    def refuse_second_run(self) -> None:
        try:
            state = json.loads(self.marker.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            state = {"state": "unknown"}
        if state.get("state") == "installed":
            raise UserError(f"an unattended install already ran in this live boot: Hypercore was installed on "
                            f"{state.get('target')} (answers {state.get('from')}); it is not run twice",
                            hint="remove the USB stick and reboot into the installed system; to install again, "
                                 "reboot the live medium")
        raise UserError(f"an unattended install already started in this live boot (answers "
                        f"{state.get('from', '?')}) and did not finish; it is not started twice",
                        hint=self.resume_hint())

    def _write(self, path: Path, text: str) -> None:
        if self.dry_run:
            return
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, text, 0o600)

    def started(self, found: sources.Found, text: str) -> None:
        self._write(self.answers_copy, text)
        self._write(self.marker, json.dumps({"state": "started", "from": found.where,
                                             "sha256": found.sha256, "time": int(time.time())}))

    def abandon(self) -> None:
        """Nothing was written to any disk: another unattended run may try again."""
        if not self.dry_run:
            self.marker.unlink(missing_ok=True)

    def installed(self, found: sources.Found, target: str) -> None:
        self._write(self.marker, json.dumps({"state": "installed", "from": found.where, "target": target,
                                             "sha256": found.sha256, "time": int(time.time())}))

    def status(self, text: str) -> None:
        """A few lines for the tty1 dialogue to show first."""
        self._write(self.dir / STATUS, text.rstrip("\n") + "\n")


def read_status(workdir: str | os.PathLike) -> str | None:
    try:
        return (Path(workdir) / STATUS).read_text(encoding="utf-8")
    except OSError:
        return None


# --- output on more than one console -------------------------------------------

class _Tee:
    """A text stream writing to `primary` and, best effort, to extra terminal
    fds (opened non-blocking and without becoming our controlling terminal,
    so a stopped or busy screen can neither stall nor interrupt the install)."""

    def __init__(self, primary, fds: list[int]):
        self.primary = primary
        self.fds = fds

    def write(self, s: str) -> int:
        n = self.primary.write(s)
        data = s.encode("utf-8", errors="replace")
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.write(fd, data)
        return n

    def flush(self) -> None:
        self.primary.flush()

    def __getattr__(self, name):
        return getattr(self.primary, name)


@contextlib.contextmanager
def also_to(paths: list[str]) -> Iterator[None]:
    fds = []
    for path in paths:
        try:
            fds.append(os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK))
        except OSError as e:
            print(f"{PROG}: cannot also write to {path}: {e.strerror}; continuing without it", file=sys.stderr)
    if not fds:
        yield
        return
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(sys.stdout, fds), _Tee(sys.stderr, fds)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = old
        for fd in fds:
            os.close(fd)


# --- the command ----------------------------------------------------------------

def say(text: str) -> None:
    print(text, flush=True)


def auto(args) -> int:
    """Errors are reported here (not by cli.main) so that they reach --also-to too."""
    state = BootState(args.workdir, args.dry_run)
    with also_to(args.also_to):
        try:
            return _auto(args, state)
        except (UserError, CommandError) as e:
            err = e if isinstance(e, UserError) else UserError(str(e), hint="run again with --debug")
            state.status("The unattended install stopped:\n" + str(err))
            sys.stdout.flush()
            code = report(err, prog=PROG)
            sys.stderr.flush()
            return code


def _auto(args, state: BootState) -> int:
    from .cli import check_install_options, run_install

    state.refuse_second_run()
    check_install_options(args)
    settings = sources.Settings(
        cmdline=Path(args.cmdline),
        credentials_dir=Path(args.credentials_dir) if args.credentials_dir else None,
        label=args.label, fetch_deadline=args.fetch_timeout)
    found = sources.find_answers(settings, out=say)
    if found is None:
        say(f"No answer file found (looked at {sources.looked_at(settings)}); nothing is installed unattended.")
        say(NOTHING_FOUND)
        state.status(f"No answer file was found, so nothing was installed unattended.\n"
                     f"(Looked at {sources.looked_at(settings)}.)")
        return 0

    say(f"Answer file: {found.where} ({found.how}; sha256 {found.sha256})")
    text = found.text()
    doc = answers_mod.parse_yaml(text, found.where)
    problems = answers_mod.check(doc, now=time.time())
    if found.where.startswith("http://"):
        problems += answers_mod.check_served(doc)
    if problems:
        err = answers_mod.AnswersError(found.where, problems)
        err.message = err.message.replace("nothing was changed", "nothing was installed")
        err.hint = f"{found.fix}; or run `hypercore-install auto` again on the serial console once it is fixed"
        raise err
    after = doc.get("after_install", "reboot")
    say(f"Unattended install (the answer file is the consent; nothing is asked); after_install: {after}\n")

    state.started(found, text)
    journal = Path(args.journal or Path(args.workdir) / JOURNAL)
    try:
        run_install(doc, args, ask=False)
    except (UserError, CommandError) as e:
        if args.dry_run or not journal.exists():
            state.abandon()         # refused before the first write (a plan refusal, a missing tool)
            raise
        err = e if isinstance(e, UserError) else UserError(str(e))
        err.hint = state.resume_hint()      # not "the same command again": auto runs once per boot
        raise err from None
    target = _target_path(args, doc)
    state.installed(found, target)
    return _after_install(after, args, state, found, target)


def _target_path(args, doc) -> str:
    """The installed disk, for the messages (from the finished journal)."""
    journal = Path(args.journal or Path(args.workdir) / JOURNAL).with_suffix(".done.json")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return json.loads(journal.read_text())["plan"]["target"]["path"]
    target = doc.get("target", {})
    return target.get("path") or "the target disk"


def _after_install(after: str, args, state: BootState, found: sources.Found, target: str) -> int:
    if args.dry_run:
        say(f"Dry run: would {'stay in the live system' if after == 'none' else after} now "
            f"(after_install: {after}).")
        return 0
    if after == "none":
        say(f"after_install: none: staying in the live system. Remove the USB stick, then reboot into "
            f"the installed system on {target}.")
        state.status(f"Hypercore was installed on {target} (answers {found.where}).\n"
                     "Remove the USB stick, then reboot into the installed system.")
        return 0
    verb = "Rebooting" if after == "reboot" else "Powering off"
    say(f"{verb} in {args.reboot_delay:.0f} s (after_install: {after}). Remove the USB stick, or make the "
        f"firmware boot {target}: started from the stick again, the machine runs this installer again.")
    sys.stdout.flush()
    time.sleep(args.reboot_delay)
    run(["systemctl", "--no-block", after])
    return 0
