"""Pure text builders for files the installer writes on the target."""

from __future__ import annotations

import ipaddress
import re

from . import layout

MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")


def network_file(net: dict) -> str:
    """A systemd-networkd .network file for the answers' `network` section."""
    iface = net.get("interface")
    if not iface:
        match = "Name=en* eth*"
    elif MAC_RE.match(iface):
        match = f"MACAddress={iface.lower()}"
    else:
        match = f"Name={iface}"
    lines = ["# Written by hypercore-install from the answer file.", "[Match]", match, "", "[Network]"]
    if net.get("mode") == "static":
        lines.append(f"Address={net['address']}")
        if net.get("gateway"):
            lines.append(f"Gateway={net['gateway']}")
        lines += [f"DNS={d}" for d in net.get("dns") or []]
    else:
        lines.append("DHCP=yes")
    return "\n".join(lines) + "\n"


def hosts_file(hostname: str, net: dict) -> str:
    """/etc/hosts naming this node (its static address, else 127.0.1.1)."""
    short = hostname.split(".")[0]
    names = hostname if short == hostname else f"{hostname} {short}"
    addr = "127.0.1.1"
    if net.get("mode") == "static" and net.get("address"):
        addr = str(ipaddress.ip_interface(net["address"]).ip)
    return (f"127.0.0.1\tlocalhost\n{addr}\t{names}\n\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def fstab_with_var_lib(existing: str, fs_uuid: str) -> str:
    """existing fstab with exactly one /var/lib line for the data filesystem, and
    one for the shared folder under it (both nosuid,nodev)."""
    ours = ("/var/lib", layout.SHARED_MOUNT)
    kept = [line for line in existing.splitlines()
            if not (line.split() and not line.lstrip().startswith("#") and len(line.split()) > 1
                    and line.split()[1] in ours)]
    kept = [line for line in kept if line != "# Hypercore data (BTRFS), see /etc/hypercore/install.json"]
    while kept and not kept[-1].strip():
        kept.pop()
    entry = f"UUID={fs_uuid}\t/var/lib\tbtrfs\t{layout.MOUNT_OPTIONS}\t0\t0"
    shared = f"UUID={fs_uuid}\t{layout.SHARED_MOUNT}\tbtrfs\t{layout.SHARED_MOUNT_OPTIONS}\t0\t0"
    return "\n".join([*kept, "# Hypercore data (BTRFS), see /etc/hypercore/install.json", entry, shared]) + "\n"


def authorized_keys(keys: list[str]) -> str:
    return "".join(k.strip() + "\n" for k in keys)


def replace_ids(data: bytes, pairs: list[tuple[str, str]]) -> bytes:
    """Replace each old identifier by its new one (lower- and upper-case spellings).
    Identifiers are equally long, so binaries (UKIs) keep their layout."""
    for old, new in pairs:
        if len(old) != len(new):
            raise ValueError(f"identifier lengths differ: {old} / {new}")
        for o, n in ((old.lower(), new.lower()), (old.upper(), new.upper())):
            data = data.replace(o.encode(), n.encode())
    return data


def vfat_serial(hex8: str) -> str:
    """'1234abcd' -> '1234-ABCD' (how blkid prints a FAT volume id)."""
    return f"{hex8[:4]}-{hex8[4:]}".upper()
