"""hypercore-netboot: network boot for client machines (dnsmasq, TFTP, iPXE, HTTP).

  hypercore-netboot probe IFACE                      which DHCP servers answer on IFACE
  hypercore-netboot render --answers FILE            print the configuration, change nothing
  hypercore-netboot apply --answers FILE             check, write, test, restart (roll back on failure)
  hypercore-netboot status                           what is configured and running
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from hypercore.errors import UserError, report
from hypercore.run import CommandError, run

from . import probe
from .apply import (CommandServices, Paths, Services, SystemdServices, apply, build, by_mac, interface_links,
                    resolve, target_for)
from .check import NetbootError, check, ipv4_addresses
from .settings import Mode, Settings

PROG = "hypercore-netboot"
DEFAULT_ANSWERS = "/etc/hypercore/answers.yaml"


def load_settings(path: str) -> Settings:
    """The `netboot` section of an answer file, checked. A file holding only
    `netboot:` (and `version:`) is accepted too."""
    from hypercore_installer import answers
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read answer file {path}: {e.strerror}",
                        hint=f"give the installed answers ({DEFAULT_ANSWERS}) or a YAML file with a netboot: section")
    doc = answers.parse_yaml(text, path)
    problems = answers.check(doc)
    if set(doc) <= {"version", "netboot"}:
        problems = [p for p in problems if p.path.startswith("netboot")]
    if problems:
        raise answers.AnswersError(path, problems)
    if "netboot" not in doc:
        raise UserError(f"{path} has no netboot: section", hint="add one (see netboot/README.md)")
    return Settings.from_answers(doc["netboot"])


def _paths(args) -> Paths:
    return Paths.from_env(dnsmasq_conf=args.dnsmasq_conf, network_file=args.network_file, env_file=args.env_file,
                          tftp_root=args.tftp_root, http_root=args.http_root, ipxe_dir=args.ipxe_dir,
                          leasefile=args.leasefile, pidfile=args.pidfile)


def _services(args) -> Services:
    if args.no_restart:
        return Services()
    if args.restart_command:
        return CommandServices(args.restart_command)
    return SystemdServices()


def cmd_probe(args) -> int:
    offers = probe.discover(args.interface, timeout=args.timeout, arch=args.arch)
    if not offers:
        print(f"no DHCP server answered on {args.interface} within {args.timeout:g} s")
        return 0
    for offer in offers:
        print(probe.describe(offer))
    return 0


def cmd_render(args) -> int:
    s = load_settings(args.answers)
    if not s.enabled:
        print("# network boot is not enabled (netboot.enabled is false): nothing to serve")
        return 0
    paths = _paths(args)
    links = interface_links()
    try:
        s = by_mac(s, links)
    except NetbootError as e:          # rendering for another machine: keep the MAC
        print(f"{PROG}: warning: {e.problems[0].message}", file=sys.stderr)
    mode = Mode(args.mode) if args.mode else s.mode
    if mode == Mode.AUTO:
        if ipv4_addresses(links, s.interface) is None:
            raise UserError(f"mode auto needs interface {s.interface} here to probe for a DHCP server",
                            hint="give --mode dhcp or --mode proxy to render one of them")
        mode, _offers, _problems = resolve(s, links=links, probe_timeout=args.timeout)
    t = target_for(s, mode, links, args.server_ip)
    if t is None:
        raise UserError(f"no server address for proxy mode: {s.interface} has no IPv4 address here",
                        hint="give --server-ip IP/PREFIX, the appliance's address on the client network")
    # Host problems do not stop rendering (it may run elsewhere): they are listed on stderr.
    for problem in check(s, mode, links=links, server_ip=t.server_ip, listeners=[], ipxe_dir=paths.ipxe_dir,
                         http_root=paths.http_root):
        print(f"{PROG}: warning: {problem.message}", file=sys.stderr)
    print(f"# mode {t.mode}, server {t.server_ip}, network {t.network}")
    for path, content in build(s, t, paths, store=False).items():
        print(f"\n# ==> {path} <==\n{content}", end="")
    return 0


def cmd_apply(args) -> int:
    if os.geteuid() != 0 and not args.no_restart:
        raise UserError("applying network boot needs root (it writes /etc and restarts services)",
                        hint="run it again as root")
    s = load_settings(args.answers)
    apply(s, _paths(args), _services(args), server_ip=args.server_ip, probe_timeout=args.timeout)
    return 0


def cmd_status(args) -> int:
    paths = _paths(args)
    for label, path in (("dnsmasq configuration", paths.dnsmasq_conf), ("HTTP server settings", paths.env_file),
                        ("static address (dhcp mode)", paths.network_file)):
        state = "present" if os.path.exists(path) else "absent"
        print(f"{label}: {path} ({state})")
    if os.path.exists(paths.dnsmasq_conf):
        head = Path(paths.dnsmasq_conf).read_text().splitlines()[:2]
        print("  " + " ".join(line.lstrip("# ") for line in head))
    for root in (paths.tftp_root, paths.http_root):
        files = sorted(p.name for p in Path(root).iterdir()) if os.path.isdir(root) else []
        print(f"{root}: {', '.join(files) or 'empty or missing'}")
    if os.path.exists("/run/systemd/system"):
        for unit in ("dnsmasq.service", "hypercore-netboot-http.service"):
            state = run(["systemctl", "is-active", unit], check=False).stdout.strip()
            print(f"{unit}: {state}")
    return 0


def _path_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("paths (also from HYPERCORE_NETBOOT_* environment variables)")
    d = Paths()
    g.add_argument("--dnsmasq-conf", metavar="FILE", help=f"dnsmasq configuration to write (default {d.dnsmasq_conf})")
    g.add_argument("--network-file", metavar="FILE",
                   help=f"networkd file for the static address in dhcp mode (default {d.network_file})")
    g.add_argument("--env-file", metavar="FILE", help=f"HTTP server settings (default {d.env_file})")
    g.add_argument("--tftp-root", metavar="DIR", help=f"TFTP root (default {d.tftp_root})")
    g.add_argument("--http-root", metavar="DIR", help=f"HTTP root (default {d.http_root})")
    g.add_argument("--ipxe-dir", metavar="DIR", help=f"where the iPXE binaries are (default {d.ipxe_dir})")
    g.add_argument("--leasefile", metavar="FILE", help="dnsmasq lease file (default: dnsmasq's own)")
    g.add_argument("--pidfile", metavar="FILE", help=argparse.SUPPRESS)


def _answers_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--answers", metavar="FILE", default=DEFAULT_ANSWERS,
                   help=f"answer file with a netboot: section (default {DEFAULT_ANSWERS})")
    p.add_argument("--server-ip", metavar="IP[/PREFIX]",
                   help="serve from this address (default: netboot.address in dhcp mode, the interface's "
                        "address in proxy mode); with /PREFIX it need not be on this machine (render)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="how long to wait for another DHCP server's answer (mode dhcp/auto; default 5: a DHCP server may first ping the address it offers, for up to 3 s)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG, description="Network boot for client machines: dnsmasq (DHCP or proxy-DHCP, TFTP), iPXE "
                               "and an HTTP server, from the answer file's netboot: section.",
        epilog="See netboot/README.md for the modes, files and ports.")
    ap.add_argument("--debug", action="store_true", help="log every command run")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("probe", help="list the DHCP servers that answer on an interface",
                       description="Broadcast one DHCPDISCOVER on IFACE (takes no address) and print every "
                                   "DHCPOFFER received. Needs root.")
    p.add_argument("interface", metavar="IFACE")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="how long to wait (default 5)")
    p.add_argument("--arch", type=int, metavar="N",
                   help="look like a PXE client of this architecture (0 BIOS, 7 UEFI) to see proxy-DHCP too")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("render", help="print the configuration files, change nothing",
                       description="Resolve the mode (auto probes for a DHCP server unless --mode is given), "
                                   "check the settings and print every file apply would write. Changes nothing.")
    _answers_options(p)
    p.add_argument("--mode", choices=["dhcp", "proxy"], help="render this mode instead of netboot.mode")
    _path_options(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("apply", help="check, write the configuration, restart dnsmasq and the HTTP server",
                       description="Probe (modes dhcp and auto), check every problem at once, write the dnsmasq "
                                   "configuration (tested with dnsmasq --test first), the networkd file (dhcp "
                                   "mode), the HTTP server settings and the iPXE menu, copy the iPXE binaries "
                                   "into the TFTP root, then enable and restart dnsmasq and "
                                   "hypercore-netboot-http. If the restart fails the previous files are put "
                                   "back and restarted. With netboot.enabled false: stop and remove.")
    _answers_options(p)
    p.add_argument("--restart-command", metavar="CMD", help="run CMD instead of systemctl to restart")
    p.add_argument("--no-restart", action="store_true", help="only write the files (e.g. into an image)")
    _path_options(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("status", help="show what is configured and running",
                       description="Show the configuration files, the TFTP and HTTP roots and the services.")
    _path_options(p)
    p.set_defaults(func=cmd_status)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except UserError as e:
        return report(e, PROG)
    except CommandError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
