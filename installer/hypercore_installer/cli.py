"""hypercore-install: install Hypercore from the live medium onto this machine's disks.

  hypercore-install probe                       the machine as JSON
  hypercore-install validate ANSWERS.yaml       check an answer file
  hypercore-install plan ANSWERS.yaml           what an install would do
  hypercore-install apply ANSWERS.yaml          install
  hypercore-install [interactive] [--dry-run]   ask the questions on the console
  hypercore-install auto                        find an answer file by itself and install (live boot)
  hypercore-install firstboot                   bootstrap Ceph on the installed node's first boot
  hypercore-install status                      the node's Ceph state and the first-boot steps
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from hypercore.errors import UserError, report
from hypercore.run import CommandError

from . import answers as answers_mod
from . import netsource
from .apply import execute, open_journal, prepare, release_stale_mounts
from .journal import DEFAULT_PATH
from .model import describe_disk
from .plan import build_plan
from .prompt import read_line
from .runner import DryRunner, Runner
from .steps import check_tools

PROG = "hypercore-install"
DEFAULT_WORKDIR = "/run/hypercore-install"


def load_machine(path: str) -> dict:
    """A recorded machine (the JSON `hypercore-install probe` prints)."""
    try:
        machine = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"machine file {path} does not exist",
                        hint="record one with: hypercore-install probe > machine.json") from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read machine file {path}: {e}",
                        hint="record one with: hypercore-install probe > machine.json") from None
    if not isinstance(machine, dict) or not isinstance(machine.get("disks"), list):
        raise UserError(f"{path} is not a machine description (no `disks` list)",
                        hint="record one with: hypercore-install probe > machine.json")
    return machine


def source_for(args) -> str | None:
    """--source-disk, else hypercore.source=URL on this system's kernel command line."""
    if getattr(args, "source_disk", None) or getattr(args, "machine", None):
        return args.source_disk
    return netsource.from_cmdline()


def machine_for(args, source: str | None = None) -> dict:
    if getattr(args, "machine", None):
        return load_machine(args.machine)
    from .collect import collect_machine
    machine = collect_machine()
    if netsource.is_url(source):
        machine["network_source"] = netsource.describe_url(
            source, netsource.pins(getattr(args, "source_sha256", None), getattr(args, "source_json_sha256", None)))
    return machine


def cmd_probe(args) -> int:
    if args.raw:
        from .collect import collect_raw
        print(json.dumps(collect_raw(), indent=1))
    else:
        print(json.dumps(machine_for(args), indent=1))
    return 0


def cmd_validate(args) -> int:
    answers_mod.load(args.answers, now=time.time())
    print("valid")
    return 0


def cmd_plan(args) -> int:
    answers = answers_mod.load(args.answers, now=time.time())
    source = source_for(args)
    plan = build_plan(answers, machine_for(args, source), source)
    print(json.dumps(plan.to_dict(), indent=1) if args.json else plan.render())
    return 0


def confirm(plan) -> None:
    """The operator types the target disk's name, or nothing happens."""
    name = plan.target["name"]
    erased = sorted({w for s in plan.steps if s.destructive for w in s.writes})
    print(f"\nThis ERASES everything on: {', '.join(erased)}")
    print(f"Target: {describe_disk(plan.target)}")
    try:
        typed = read_line(f"Type the target disk's name ({name}) to install, anything else cancels: ")
    except EOFError:
        typed = None
    if (typed or "").strip() != name:
        raise UserError("cancelled: the target disk's name was not typed; nothing was changed by this run",
                        hint=f"type {name} at the prompt, or pass --yes for unattended installs")


def check_install_options(args) -> None:
    """Refuse option combinations and missing privileges before any question or probe."""
    if args.machine and not args.dry_run:
        raise UserError("--machine describes a recorded machine; an install can only happen on this one",
                        hint="use --machine with --dry-run, or leave it out")
    if not args.dry_run and os.geteuid() != 0:
        raise UserError("installing needs root (it partitions disks)", hint="run it again as root, or add --dry-run")
    if not args.dry_run:
        release_stale_mounts(Runner(), args.workdir)


def run_install(answers: dict, args, *, ask: bool) -> int:
    """Plan, show, confirm (when ask), then apply; shared by apply and interactive."""
    dry = args.dry_run
    runner = DryRunner() if dry else Runner()
    workdir = args.workdir
    journal_path = None if dry else Path(args.journal or Path(workdir) / DEFAULT_PATH.name)
    source = source_for(args)
    if netsource.is_url(source):
        print(f"Installation source: {source} (network install)")
    machine = machine_for(args, source)
    prepared = prepare(answers, machine, source, journal_path)
    print(prepared.plan.render())
    if not dry:
        check_tools(s.action for s in prepared.plan.steps)
    if prepared.resuming:
        print(f"\nResuming the interrupted install recorded in {journal_path} "
              f"({len(prepared.journal.done)} of {len(prepared.plan.steps)} steps done).")
    if ask:
        confirm(prepared.plan)
    journal = open_journal(prepared, answers, journal_path)
    print("\nDry run: these are the commands an install would run; nothing is changed.\n" if dry else "")
    execute(prepared.plan, runner, journal, workdir)
    if dry:
        print("\nDry run complete; nothing was changed.")
    else:
        print(f"\nHypercore is installed on {prepared.plan.target['path']}. Remove the installation medium "
              "and reboot; the first boot sets up Ceph.")
    return 0


def cmd_apply(args) -> int:
    answers = answers_mod.load(args.answers, now=time.time())
    check_install_options(args)
    return run_install(answers, args, ask=not (args.yes or args.dry_run))


def cmd_interactive(args) -> int:
    from .interactive import interactive
    return interactive(args)


def cmd_auto(args) -> int:
    from .auto import auto
    return auto(args)


def cmd_firstboot(args) -> int:
    from .firstboot.main import firstboot
    return firstboot(args)


def cmd_status(args) -> int:
    from .firstboot.main import status
    return status(args)


def _install_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true",
                   help="print every command the install would run, change nothing")
    p.add_argument("--machine", metavar="MACHINE.json",
                   help="use a recorded machine (from `probe`) instead of this one; only with --dry-run")
    p.add_argument("--journal", metavar="PATH",
                   help=f"install journal, for resuming after a crash (default {DEFAULT_WORKDIR}/journal.json)")
    p.add_argument("--source-disk", metavar="PATH", help=argparse.SUPPRESS)
    # With --source-disk URL: the SHA-256s the boot menu would give (hypercore.source_sha256=, ..._json_sha256=).
    p.add_argument("--source-sha256", metavar="HEX", help=argparse.SUPPRESS)
    p.add_argument("--source-json-sha256", metavar="HEX", help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=argparse.SUPPRESS)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Install Hypercore from this live medium onto the machine's disks. Without a "
                    "command it asks the questions on the console (interactive).",
        epilog="Answer file reference: the JSON schema answers.schema.json in the hypercore_installer "
               "package; examples in installer/examples/.")
    ap.add_argument("--debug", action="store_true", help="log every command run")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("probe", help="print this machine's disks and network interfaces as JSON",
                       description="Print this machine's disks (size, model, serial, signatures, mounts, "
                                   "holders, boot medium) and network interfaces as JSON. Changes nothing.")
    p.add_argument("--raw", action="store_true",
                   help="print the raw command outputs instead (to record a machine for tests)")
    p.set_defaults(func=cmd_probe, machine=None)

    p = sub.add_parser("validate", help="check an answer file",
                       description="Check an answer file against the schema; print `valid`, or every "
                                   "problem with its path and a hint (exit 1).")
    p.add_argument("answers", metavar="ANSWERS.yaml")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="show what an install would do, change nothing",
                       description="Show the ordered install steps for an answer file on this machine (or a "
                                   "recorded one), each marked DESTRUCTIVE or not with the disks it writes; "
                                   "or every reason it is refused (exit 1). Changes nothing.")
    p.add_argument("answers", metavar="ANSWERS.yaml")
    p.add_argument("--machine", metavar="MACHINE.json", help="plan for a recorded machine (from `probe`)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--source-disk", metavar="PATH", help=argparse.SUPPRESS)
    # With --source-disk URL: the SHA-256s the boot menu would give (hypercore.source_sha256=, ..._json_sha256=).
    p.add_argument("--source-sha256", metavar="HEX", help=argparse.SUPPRESS)
    p.add_argument("--source-json-sha256", metavar="HEX", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="install according to an answer file",
                       description="Validate, probe, plan, show the plan, ask for the target disk's name "
                                   "(unless --yes), then install. Re-running after a crash resumes from "
                                   "the journal.")
    p.add_argument("answers", metavar="ANSWERS.yaml")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (unattended installs)")
    _install_options(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("interactive", help="ask the install questions on the console (the default)",
                       description="Show the disks, ask hostname, target disk, network, root login and Ceph "
                                   "role, show the plan, ask for confirmation, install.")
    p.add_argument("--save-answers", metavar="PATH", help="also write the answers to this YAML file")
    _install_options(p)
    p.set_defaults(func=cmd_interactive)

    from .auto import add_arguments as auto_arguments
    p = sub.add_parser("auto", help="find an answer file by itself and install unattended (run at live boot)",
                       description="Look for an answer file: hypercore.answers=URL on the kernel command line, "
                                   "the systemd credential hypercore.answers, a filesystem labelled HYPERCORE "
                                   "holding hypercore-answers.yaml. Found: validate it, show the plan, install "
                                   "as `apply FILE --yes` does, then act on its after_install. None found: "
                                   "exit 0 (the dialogue runs on tty1).")
    auto_arguments(p)
    _install_options(p)
    p.set_defaults(func=cmd_auto)

    p = sub.add_parser("firstboot", help="bootstrap Ceph on the installed node (run by hypercore-firstboot.service)",
                       description="Read /etc/hypercore/answers.yaml and install.json and make this node's Ceph "
                                   "role: a new one-node cluster (monitor, manager, OSDs, pool vm-pool, "
                                   "HEALTH_OK) or OSDs joining an existing cluster. Each step runs once; after a "
                                   "failure, run it again to resume at the failed step.")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_firstboot)

    p = sub.add_parser("status", help="show the node's Ceph state and the first-boot bootstrap's steps",
                       description="Print the ready report (address, Ceph health, fsid, next commands) and "
                                   "the state of each first-boot step. Changes nothing.")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_status)
    return ap


def _default_to_interactive(argv: list[str]) -> list[str]:
    """`hypercore-install [--debug] [interactive options]` means `interactive`."""
    lead = [a for a in argv[:1] if a == "--debug"]
    rest = argv[len(lead):]
    if not rest or (rest[0].startswith("-") and rest[0] not in ("-h", "--help")):
        return [*lead, "interactive", *rest]
    return argv


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(_default_to_interactive(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except UserError as e:
        sys.stdout.flush()
        return report(e, prog=PROG)
    except CommandError as e:
        sys.stdout.flush()
        return report(UserError(str(e), hint="run again with --debug to see every command"), prog=PROG)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
