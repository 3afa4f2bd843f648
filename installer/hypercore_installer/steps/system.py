"""Steps that configure the installed system's files (root and ESP mounted
under the work directory)."""

from __future__ import annotations

import json
import os
import time

import yaml

from .. import render
from ..runner import MTOOLS_ENV
from .context import Context

LIVE_FILES = ("etc/hypercore/live",
              "etc/systemd/system/serial-getty@ttyS0.service.d/live-autologin.conf")
LIVE_NETWORK = "etc/systemd/network/80-hypercore-dhcp.network"
NETWORK_FILE = "etc/systemd/network/10-hypercore.network"
# State the live medium made for itself that must not be cloned.
MACHINE_STATE = ("var/lib/systemd/random-seed", "var/lib/systemd/credential.secret")
BOOT_FILES_ON_ROOT = ("etc/fstab", "etc/kernel/cmdline")
# ESP directories whose files may name the root (grub for BIOS, systemd-boot
# entries, UKIs with a .cmdline).
ESP_BOOT_DIRS = ("::/grub/", "::/loader/entries/", "::/EFI/Linux/")


def _pairs(ctx: Context, source: dict) -> list[tuple[str, str]]:
    """(old, new) identifiers: disk GUID, partition GUIDs, filesystem UUIDs."""
    ids, pairs = ctx.ids, []
    if source.get("disk_id"):
        pairs.append((source["disk_id"], ids["disk"]))
    for part in source["partitions"]:
        if part.get("uuid"):
            pairs.append((part["uuid"], ids[f"part:{part['number']}"]))
    if source["root"].get("fs_uuid"):
        pairs.append((source["root"]["fs_uuid"], ids["fs:root"]))
    if source["esp"].get("fs_uuid"):
        pairs.append((source["esp"]["fs_uuid"], render.vfat_serial(ids["fs:esp"])))
    return pairs


def _patch_root_files(ctx: Context, root: str, pairs) -> None:
    for rel in BOOT_FILES_ON_ROOT:
        full = os.path.join(root, rel)
        if not os.path.isfile(full):
            continue
        with open(full, "rb") as f:
            old = f.read()
        new = render.replace_ids(old, pairs)
        if new != old:
            ctx.runner.say(f"    updated identifiers in /{rel}")
            ctx.runner.write_file(full, new, os.stat(full).st_mode & 0o7777)


def _patch_esp(ctx: Context, esp: str, pairs) -> None:
    """The ESP is read and written with mtools (no vfat mount needed)."""
    listing = ctx.runner.query(["mdir", "-/", "-b", "-i", esp, "::/"], env=MTOOLS_ENV).decode()
    files = [f for f in listing.splitlines() if f.startswith(ESP_BOOT_DIRS) and not f.endswith("/")]
    scratch = ctx.mountpoint("esp-scratch")
    for f in files:
        old = ctx.runner.query(["mtype", "-i", esp, f], env=MTOOLS_ENV)
        new = render.replace_ids(old, pairs)
        if new == old:
            continue
        ctx.runner.say(f"    updated identifiers in ESP {f[2:]}")
        os.makedirs(scratch, mode=0o700, exist_ok=True)
        local = os.path.join(scratch, "file")
        with open(local, "wb") as out:
            out.write(new)
        ctx.runner.run(["mcopy", "-o", "-i", esp, local, f], env=MTOOLS_ENV)
        os.unlink(local)
    # A copied random seed would give both disks the same seed.
    drop_random_seed(ctx, esp)


RANDOM_SEED = "::/loader/random-seed"


def drop_random_seed(ctx: Context, device: str, offset: int = 0) -> None:
    """The ESP's boot random seed, zeroed in place and then deleted: mtools
    alone would leave its bytes in the free clusters."""
    ctx.runner.zero_fat_file(device, offset, RANDOM_SEED)
    ctx.runner.run(["mdel", "-i", f"{device}@@{offset}", RANDOM_SEED], ok=(0, 1), env=MTOOLS_ENV)


def fix_boot_references(ctx: Context, p: dict) -> None:
    """Replace the image's old GUIDs/UUIDs by the new ones wherever the boot
    path names them (grub.cfg's root=PARTUUID=..., loader entries, UKIs,
    /etc/fstab, /etc/kernel/cmdline); drop the ESP's copied random seed."""
    pairs = _pairs(ctx, p["source"])
    ctx.runner.say("    " + "; ".join(f"{o} -> {n}" for o, n in pairs))
    _patch_esp(ctx, p["esp"], pairs)
    with ctx.mounted(p["root"], "root") as root:
        _patch_root_files(ctx, root, pairs)


def configure_identity(ctx: Context, p: dict) -> None:
    with ctx.mounted(p["root"], "root") as root:
        etc = os.path.join(root, "etc")
        ctx.runner.write_file(f"{etc}/hostname", p["hostname"] + "\n")
        ctx.runner.write_file(f"{etc}/hosts", render.hosts_file(p["hostname"], p.get("network") or {}))
        ctx.runner.write_file(f"{etc}/machine-id", ctx.ids["machine-id"] + "\n", 0o444)
        ctx.runner.symlink(f"../usr/share/zoneinfo/{p['timezone']}", f"{etc}/localtime")
        ctx.runner.write_file(f"{etc}/timezone", p["timezone"] + "\n")
        ctx.runner.run(["find", f"{etc}/ssh", "-maxdepth", "1", "-name", "ssh_host_*", "-delete"], ok=(0, 1))
        for path in MACHINE_STATE:
            ctx.runner.remove(os.path.join(root, path))


def configure_network(ctx: Context, p: dict) -> None:
    with ctx.mounted(p["root"], "root") as root:
        ctx.runner.remove(os.path.join(root, LIVE_NETWORK))
        ctx.runner.write_file(os.path.join(root, NETWORK_FILE), render.network_file(p["network"]))


def configure_root_login(ctx: Context, p: dict) -> None:
    with ctx.mounted(p["root"], "root") as root:
        ssh = os.path.join(root, "root/.ssh")
        keys = os.path.join(ssh, "authorized_keys")
        if p["ssh_keys"]:
            ctx.runner.makedirs(ssh, 0o700)
            ctx.runner.write_file(keys, render.authorized_keys(p["ssh_keys"]), 0o600)
        else:
            ctx.runner.remove(keys)
        # "!*": locked, no password login (never an empty password).
        ctx.runner.run(["chpasswd", "--encrypted", "--root", root],
                       input=f"root:{p['password_hash'] or '!*'}\n", secret=True)


def remove_live_bits(ctx: Context, p: dict) -> None:
    with ctx.mounted(p["root"], "root") as root:
        for path in LIVE_FILES:
            ctx.runner.remove(os.path.join(root, path))
        dropin = os.path.join(root, os.path.dirname(LIVE_FILES[1]))
        ctx.runner.run(["rmdir", "--ignore-fail-on-non-empty", dropin], ok=(0, 1))


def save_answers(ctx: Context, p: dict) -> None:
    record = {
        "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "disks": p["disks"],
        "data_filesystem_uuid": ctx.ids["fs:data"],
        "root_filesystem_uuid": ctx.ids["fs:root"],
        "machine_id": ctx.ids["machine-id"],
    }
    with ctx.mounted(p["root"], "root") as root:
        d = os.path.join(root, "etc/hypercore")
        ctx.runner.makedirs(d, 0o755)
        ctx.runner.write_file(f"{d}/answers.yaml", "# The answers this node was installed with "
                              "(hypercore-install); read by the first-boot Ceph bootstrap.\n"
                              + yaml.safe_dump(p["answers"], sort_keys=False), 0o600, secret=True)
        ctx.runner.write_file(f"{d}/install.json", json.dumps(record, indent=1) + "\n", 0o600)
