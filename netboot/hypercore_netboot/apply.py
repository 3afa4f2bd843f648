"""Apply the netboot settings: resolve the mode (probe for a DHCP server),
check everything, write the files, test the dnsmasq configuration with
`dnsmasq --test`, swap the files in atomically, restart the services; when the
restart fails, put the previous files back and restart again, so the previous
working configuration stays.

The one entry point for other code (the installed node's first boot):

    apply(netboot: dict, paths: Paths = Paths.from_env(), services: Services = SystemdServices())
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypercore.errors import UserError
from hypercore.files import write_atomic
from hypercore.run import CommandError, run

from . import DNSMASQ_CONF, ENV_FILE, HTTP_ROOT, IPXE_DIR, NETWORK_FILE, TFTP_ROOT, pins, probe, render, roots
from .check import IPXE_FILES, NetbootError, Problem, check, dhcp_server_problem, gather_listeners, ipv4_addresses
from .render import MENU, Target
from .settings import Mode, Settings

UNITS = ("dnsmasq.service", "hypercore-netboot-http.service")


@dataclass(frozen=True)
class Paths:
    """Where apply reads and writes; every one overridable (tests use a temp dir)."""

    dnsmasq_conf: str = DNSMASQ_CONF
    network_file: str = NETWORK_FILE
    env_file: str = ENV_FILE
    tftp_root: str = TFTP_ROOT
    http_root: str = HTTP_ROOT
    ipxe_dir: str = IPXE_DIR
    leasefile: str | None = None      # dnsmasq's default (/var/lib/misc/dnsmasq.leases) when None
    pidfile: str | None = None

    ENV = {"dnsmasq_conf": "HYPERCORE_NETBOOT_DNSMASQ_CONF", "network_file": "HYPERCORE_NETBOOT_NETWORK_FILE",
           "env_file": "HYPERCORE_NETBOOT_ENV_FILE", "tftp_root": "HYPERCORE_NETBOOT_TFTP_ROOT",
           "http_root": "HYPERCORE_NETBOOT_HTTP_ROOT", "ipxe_dir": "HYPERCORE_NETBOOT_IPXE_DIR",
           "leasefile": "HYPERCORE_NETBOOT_LEASEFILE", "pidfile": "HYPERCORE_NETBOOT_PIDFILE"}

    @classmethod
    def from_env(cls, env=os.environ, **overrides) -> "Paths":
        values = {k: env[v] for k, v in cls.ENV.items() if env.get(v)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Services:
    """What serves the configuration; apply restarts it after swapping files."""

    def pids(self) -> set[int]:
        """Processes that may hold the netboot ports now (they are restarted, not in the way)."""
        return set()

    def restart(self, s: Settings) -> None:
        """Start or restart everything for settings s; raise on failure."""

    def stop(self) -> None:
        """Stop serving (netboot disabled)."""


class SystemdServices(Services):
    """dnsmasq.service and hypercore-netboot-http.service, and networkd for the static address."""

    def pids(self) -> set[int]:
        out = set()
        for unit in UNITS:
            try:
                pid = run(["systemctl", "show", "-p", "MainPID", "--value", unit], check=False).stdout.strip()
            except UserError:
                return set()
            if pid.isdigit() and int(pid) > 0:
                out.add(int(pid))
        return out

    def restart(self, s: Settings) -> None:
        run(["systemctl", "daemon-reload"])
        if shutil.which("networkctl"):
            run(["networkctl", "reload"], check=False)
            run(["networkctl", "reconfigure", s.interface], check=False)
        run(["systemctl", "enable", *UNITS])
        run(["systemctl", "restart", *UNITS], timeout=60)

    def stop(self) -> None:
        run(["systemctl", "disable", "--now", *UNITS], check=False)


class CommandServices(Services):
    """Run one command to restart (hypercore-netboot apply --restart-command CMD)."""

    def __init__(self, command: str):
        self.argv = shlex.split(command)

    def restart(self, s: Settings) -> None:
        run(self.argv, timeout=60)


@dataclass
class Result:
    mode: Mode
    server_ip: str
    network: str
    files: dict[str, str] = field(default_factory=dict)        # path -> new content
    offers: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"network boot on {self.network}: mode {self.mode}, server {self.server_ip}; "
                f"wrote {', '.join(sorted(self.files))}")


def interface_links(iface: str | None = None) -> list[dict]:
    """`ip -j addr` of every interface."""
    return json.loads(run(["ip", "-j", "addr", "show"]).stdout or "[]")


MAC = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")


def by_mac(s: Settings, links: list[dict]) -> Settings:
    """netboot.interface may be a MAC address (names differ between machines
    and are only known once installed): the name of the interface that has it."""
    if not s.interface or not MAC.match(s.interface):
        return s
    mac = s.interface.lower()
    names = [link["ifname"] for link in links if (link.get("address") or "").lower() == mac]
    if not names:
        known = ", ".join(f"{link['ifname']} ({link.get('address')})" for link in links
                          if link.get("ifname") != "lo")
        raise NetbootError([Problem(f"no interface has the MAC address {mac} (netboot.interface)",
                                    f"use one of: {known or 'none found'}")])
    return replace(s, interface=names[0])


def resolve(s: Settings, *, links: list[dict], server_ip: str | None = None, mode: Mode | None = None,
            probe_timeout: float = 5.0, discover=probe.dhcp_servers) -> tuple[Mode, list, list[Problem]]:
    """The mode to serve in (auto: proxy when another DHCP server answers, else dhcp),
    the offers seen, and the problem of refusing dhcp next to another server."""
    mode = mode or s.mode
    offers: list = []
    addrs = ipv4_addresses(links, s.interface) if s.interface else None
    if mode in (Mode.AUTO, Mode.DHCP) and addrs is not None:
        own = {str(a.ip) for a in addrs}
        if s.address:
            own.add(str(ipaddress.IPv4Interface(s.address).ip))
        offers = discover(s.interface, timeout=probe_timeout, ignore=own)
    problems: list[Problem] = []
    if mode == Mode.AUTO:
        mode = Mode.PROXY if offers else Mode.DHCP
    elif mode == Mode.DHCP and (p := dhcp_server_problem(s, offers)):
        problems.append(p)
    return mode, offers, problems


def target_for(s: Settings, mode: Mode, links: list[dict], server_ip: str | None) -> Target | None:
    if mode == Mode.DHCP and s.address:
        iface = ipaddress.IPv4Interface(s.address)
        return Target(mode, server_ip or str(iface.ip), str(iface.network))
    if server_ip and "/" in server_ip:               # IP/PREFIX: render for a network not here
        given = ipaddress.IPv4Interface(server_ip)
        return Target(mode, str(given.ip), str(given.network))
    addrs = ipv4_addresses(links, s.interface) or [] if s.interface else []
    chosen = next((a for a in addrs if server_ip is None or str(a.ip) == server_ip), None)
    return Target(mode, str(chosen.ip), str(chosen.network)) if chosen else None


def build(s: Settings, t: Target, paths: Paths, store: bool = True) -> dict[str, str]:
    """path -> content of every file the configuration consists of; store: record
    the SHA-256 of a served file that has no record yet (render passes False)."""
    menu = render.ipxe_menu(s, t.server_ip, roots.published(paths.http_root, store),
                            pins.served(paths.http_root, store))
    files = {
        paths.dnsmasq_conf: render.dnsmasq_conf(s, t, tftp_root=paths.tftp_root, leasefile=paths.leasefile,
                                                pidfile=paths.pidfile),
        paths.env_file: render.env_file(s, t.server_ip, paths.http_root),
        os.path.join(paths.tftp_root, MENU): menu,
        os.path.join(paths.http_root, MENU): menu,
    }
    if t.mode == Mode.DHCP:
        files[paths.network_file] = render.network_file(s)
    return files


def plan(s: Settings, paths: Paths, *, links: list[dict] | None = None, server_ip: str | None = None,
         mode: Mode | None = None, listeners=None, ignore_pids: set[int] = frozenset(),
         probe_timeout: float = 5.0, discover=probe.dhcp_servers) -> Result:
    """Resolve and check everything; the files to write, or NetbootError with every problem."""
    links = interface_links() if links is None else links
    mode, offers, problems = resolve(s, links=links, server_ip=server_ip, mode=mode,
                                     probe_timeout=probe_timeout, discover=discover)
    problems += check(s, mode, links=links, server_ip=server_ip,
                      listeners=gather_listeners() if listeners is None else listeners,
                      ignore_pids=ignore_pids, ipxe_dir=paths.ipxe_dir, http_root=paths.http_root)
    t = target_for(s, mode, links, server_ip)
    if problems or t is None:
        raise NetbootError(problems or [Problem("no server address to serve from", "give --server-ip")])
    return Result(mode, t.server_ip, t.network, build(s, t, paths), offers)


def _write_atomic(path: str, content: bytes, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_atomic(path, content, mode)


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def test_dnsmasq_conf(content: str, directory: str) -> None:
    """`dnsmasq --test` on content (in a temp file next to where it goes)."""
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hypercore-netboot-test.", suffix=".conf")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        try:
            run(["dnsmasq", "--test", f"--conf-file={tmp}"])
        except CommandError as e:
            raise UserError(f"dnsmasq refuses the new configuration: {(e.stderr or e.stdout).strip()}",
                            hint="nothing was changed; check the netboot settings (or report a bug)") from None
    finally:
        os.unlink(tmp)


def install(result: Result, s: Settings, paths: Paths, services: Services) -> None:
    """Test, swap the files in, copy the iPXE binaries, restart; roll back on failure."""
    test_dnsmasq_conf(result.files[paths.dnsmasq_conf], os.path.dirname(paths.dnsmasq_conf))
    for root in (paths.tftp_root, paths.http_root):
        os.makedirs(root, mode=0o755, exist_ok=True)
    for name in IPXE_FILES:
        src = os.path.join(paths.ipxe_dir, name)
        _write_atomic(os.path.join(paths.tftp_root, name), Path(src).read_bytes())
    _write_atomic(os.path.join(paths.http_root, render.HTTP_BOOT),
                  Path(paths.ipxe_dir, render.HTTP_BOOT).read_bytes())
    touched = dict(result.files)
    if result.mode == Mode.PROXY:
        touched[paths.network_file] = None          # no static address in proxy mode
    previous = {path: _read(path) for path in touched}
    try:
        for path, content in touched.items():
            if content is None:
                if previous[path] is not None:
                    os.unlink(path)
            else:
                _write_atomic(path, content.encode())
        services.restart(s)
    except (CommandError, UserError, OSError) as e:
        _restore(previous)
        again = ""
        if any(v is not None for v in previous.values()):
            try:
                services.restart(s)
                again = "; the previous configuration is back in place and running"
            except (CommandError, UserError, OSError) as e2:
                again = f"; the previous files are back but restarting them failed too: {e2}"
        else:
            again = "; there was no previous configuration, the new files were removed"
        raise UserError(f"starting network boot failed: {e}{again}",
                        hint="see `journalctl -u dnsmasq -u hypercore-netboot-http` for why") from None


def _restore(previous: dict[str, bytes | None]) -> None:
    for path, content in previous.items():
        if content is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            _write_atomic(path, content)


def disable(paths: Paths, services: Services) -> list[str]:
    """netboot not enabled: stop serving and remove our configuration files."""
    services.stop()
    removed = []
    for path in (paths.dnsmasq_conf, paths.network_file, paths.env_file):
        if os.path.exists(path):
            os.unlink(path)
            removed.append(path)
    return removed


def with_diskless(s: Settings, paths: Paths, log) -> Settings:
    """Learn where diskless nodes reach Ceph; remove what earlier versions
    published for them (each node is now approved with its own identity)."""
    from . import diskless
    conf = os.environ.get("HYPERCORE_NETBOOT_CEPH_CONF", "/etc/ceph/ceph.conf")
    if not os.path.exists(conf):
        raise NetbootError([Problem(f"netboot.diskless needs this node's Ceph, and {conf} does not exist",
                                    "set up Ceph first (hypercore-firstboot), or set diskless: false")])
    for line in diskless.retire_published(Path(paths.http_root)):
        print(line, file=log)
    return replace(s, ceph_network=diskless.ceph_public_network(conf))


def apply(netboot: dict | Settings, paths: Paths | None = None, services: Services | None = None, *,
          server_ip: str | None = None, probe_timeout: float = 5.0, log=sys.stderr) -> Result | None:
    """Apply the answers' `netboot` section on this host. Returns the Result, or
    None when netboot is not enabled (then any previous configuration is removed
    and the services stopped). Raises NetbootError (every problem, nothing
    changed) or UserError (dnsmasq refused the file / restart failed, previous
    configuration restored)."""
    s = netboot if isinstance(netboot, Settings) else Settings.from_answers(netboot)
    paths = paths or Paths.from_env()
    services = services or SystemdServices()
    if not s.enabled:
        removed = disable(paths, services)
        print("network boot is not enabled" + (f"; removed {', '.join(removed)}" if removed else ""), file=log)
        return None
    links = interface_links()
    s = by_mac(s, links)
    if s.diskless:
        s = with_diskless(s, paths, log)
    result = plan(s, paths, links=links, server_ip=server_ip, ignore_pids=services.pids(),
                  probe_timeout=probe_timeout)
    for offer in result.offers:
        print(f"found {probe.describe(offer)} on {s.interface}", file=log)
    install(result, s, paths, services)
    print(result.summary(), file=log)
    return result
