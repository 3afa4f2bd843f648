"""The netboot client's initramfs: busybox, a few kernel modules and /init.

/init brings up the network with DHCP (the interface iPXE booted from first,
named by BOOTIF=), downloads the root filesystem image named by
``hypercore.netroot=URL`` (a squashfs of the appliance's own root) into RAM,
checks it against ``hypercore.netroot_sha256=HEX`` (the appliance's menu puts
both on the command line; no digest or a different one: no mount), mounts it
read-only under a RAM overlay and starts systemd from it. A failure
prints one line saying what and how to fix it, then a shell.

Built inside the image at build time (mkosi.conf.d/scripts/netboot.chroot) from
the image's own kernel modules and /bin/busybox, so the client kernel and
modules always match. Pure Python: a newc cpio writer and modules.dep.
"""

from __future__ import annotations

import argparse
import gzip
import io
import lzma
import stat
import sys
from pathlib import Path

# Network cards of common servers and desktops, plus what the root needs.
NIC_MODULES = ["virtio_net", "e1000", "e1000e", "igb", "igc", "ixgbe", "i40e", "ice", "r8169",
               "tg3", "bnx2", "bnx2x", "be2net", "atlantic", "mlx4_en", "mlx5_core", "vmxnet3",
               "crc32c_generic"]
ROOT_MODULES = ["virtio_pci", "af_packet", "squashfs", "loop", "overlay"]

# verify FILE SHA256 URL: the downloaded file is what the boot menu said, or fail
# (and the file is removed). Also run on its own by the tests.
VERIFY = r"""verify() {
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        rm -f "$1"
        fail "$3 does not match hypercore.netroot_sha256 from the boot menu (expected $2, got $got): not used" \
            "the download was damaged, or the file changed on the appliance: boot again; if it fails again, run hypercore-netboot apply on the appliance"
    fi
}
"""

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /sbin /usr/bin /usr/sbin /newroot /ram
/bin/busybox --install -s
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "hypercore-netboot: $*" >/dev/console; }
fail() {
    say "ERROR: $1"
    say "fix: $2"
    say "starting a shell (type exit to try again)"
    setsid sh -c 'exec sh </dev/console >/dev/console 2>&1'
    exec /init
}
@VERIFY@
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
dmesg -n 1
url= sha= bootif=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        hypercore.netroot=*) url="${arg#hypercore.netroot=}" ;;
        hypercore.netroot_sha256=*) sha="${arg#hypercore.netroot_sha256=}" ;;
        BOOTIF=*) bootif=$(echo "${arg#BOOTIF=}" | sed 's/^01-//; s/-/:/g' | tr A-F a-f) ;;
    esac
done
[ -n "$url" ] || fail "no hypercore.netroot=URL on the kernel command line" \
    "boot this kernel from the appliance's iPXE menu (it adds the URL)"
echo "$sha" | grep -qE '^[0-9a-f]{64}$' || fail "no hypercore.netroot_sha256=SHA256 of the root image on the kernel command line" \
    "boot from the appliance's iPXE menu (run hypercore-netboot apply on the appliance to write it)"
say "root image $url"
ifaces=""
for dev in /sys/class/net/*; do
    name=${dev##*/}
    [ "$name" = lo ] && continue
    if [ -n "$bootif" ] && [ "$(cat $dev/address)" = "$bootif" ]; then
        ifaces="$name $ifaces"
    else
        ifaces="$ifaces $name"
    fi
done
[ -n "$ifaces" ] || fail "no network interface found" "this initramfs lacks the driver for this network card"
up=
for i in 1 2 3; do
    for name in $ifaces; do
        ip link set "$name" up
        if udhcpc -i "$name" -n -q -t 4 -T 2 -s /udhcpc.script >/dev/null 2>&1; then up=$name; break 2; fi
    done
done
[ -n "$up" ] || fail "no DHCP answer on: $ifaces" "check the cable and the appliance's dnsmasq (systemctl status dnsmasq)"
say "network up on $up: $(ip -4 -o addr show dev $up | awk '{print $4}')"
mount -t tmpfs -o mode=0755 ram /ram
mkdir -p /ram/lower /ram/upper /ram/work
say "downloading the root image"
# A dead server would leave wget waiting for TCP to give up (minutes); ask
# first, briefly. (busybox 1.35's own wget -T crashes, so timeout(1) it is.)
timeout 20 wget -q --spider "$url" 2>/dev/null || fail "could not download $url: no answer within 20 s, or no such file" \
    "check the appliance's HTTP service: systemctl status hypercore-netboot-http"
wget -q -O /ram/root.squashfs "$url" || fail "could not download $url" \
    "check the appliance's HTTP service: systemctl status hypercore-netboot-http"
say "checking the root image's SHA-256"
verify /ram/root.squashfs "$sha" "$url"
mount -t squashfs -o ro,loop /ram/root.squashfs /ram/lower || fail "$url is not a squashfs image" \
    "rebuild or re-copy root.squashfs on the appliance"
mount -t overlay -o lowerdir=/ram/lower,upperdir=/ram/upper,workdir=/ram/work overlay /newroot \
    || fail "cannot mount the overlay root" "the kernel needs the overlay module"
mount -t tmpfs -o mode=0755,nosuid,nodev run /newroot/run
mkdir -p /newroot/run/hypercore/netroot
mount --move /ram /newroot/run/hypercore/netroot
echo "$url" > /newroot/run/hypercore/netroot.url
# Hand the NICs back unconfigured: udev can only give a link its real name
# (enp0s3, not eth0) while it is down, and networkd only manages a link udev
# has finished with; networkd then asks DHCP again, with the routes this
# minimal client did not request (classless static routes to Ceph).
for name in $ifaces; do ip addr flush dev "$name"; ip link set "$name" down; done
say "starting the system"
for m in dev proc sys; do mount --move /$m /newroot/$m; done
exec switch_root /newroot /lib/systemd/systemd
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
        : ;;
esac
exit 0
"""


class InitrdError(Exception):
    pass


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An uncompressed newc cpio archive; entries are (path, mode, data)."""
    buf = io.BytesIO()
    for ino, (path, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        name = path.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        header = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name), 0))
        buf.write(header.encode() + name)
        buf.write(b"\0" * (-(110 + len(name)) % 4))
        buf.write(data)
        buf.write(b"\0" * (-len(data) % 4))
    return buf.getvalue()


def _norm(name: str) -> str:
    return name.replace("-", "_")


def module_closure(moddir: Path, wanted: list[str]) -> tuple[list[Path], list[str]]:
    """Module files for wanted and their dependencies (dependencies first),
    from modules.dep; and the wanted names that are neither files nor built in."""
    deps: dict[str, tuple[Path, list[Path]]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        path = moddir / target
        deps[_norm(path.name.split(".ko")[0])] = (path, [moddir / d for d in rest.split()])
    builtin = set()
    if (moddir / "modules.builtin").exists():
        builtin = {_norm(Path(p).name.split(".ko")[0])
                   for p in (moddir / "modules.builtin").read_text().split()}
    order: list[Path] = []
    missing: list[str] = []

    def add(path: Path) -> None:
        name = _norm(path.name.split(".ko")[0])
        for dep in deps.get(name, (path, []))[1]:
            add(dep)
        if path not in order:
            order.append(path)

    for want in wanted:
        if _norm(want) in deps:
            add(deps[_norm(want)][0])
        elif _norm(want) not in builtin:
            missing.append(want)
    return order, missing


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise InitrdError(f"cannot unpack module {path} (only .ko and .ko.xz): busybox insmod needs plain modules")


def init_script() -> str:
    return INIT.replace("@VERIFY@", VERIFY.rstrip("\n"))


def build(moddir: Path, busybox: Path, out: Path, wanted: list[str] | None = None) -> list[str]:
    """Write a gzip-compressed initramfs to out; return the modules left out."""
    if not busybox.exists():
        raise InitrdError(f"{busybox} does not exist: install busybox-static")
    if not (moddir / "modules.dep").exists():
        raise InitrdError(f"{moddir}/modules.dep does not exist: run depmod for that kernel")
    files, missing = module_closure(moddir, wanted or NIC_MODULES + ROOT_MODULES)
    d, f = stat.S_IFDIR | 0o755, stat.S_IFREG
    entries = [(p, d, b"") for p in ("bin", "lib", "lib/modules")]
    entries += [("bin/busybox", f | 0o755, busybox.read_bytes()),
                ("init", f | 0o755, init_script().encode()),
                ("udhcpc.script", f | 0o755, UDHCPC_SCRIPT.encode())]
    names = []
    for path in files:
        name = path.name.split(".ko")[0]
        names.append(name)
        entries.append((f"lib/modules/{name}.ko", f | 0o644, _module_bytes(path)))
    entries.append(("lib/modules/order", f | 0o644, ("\n".join(names) + "\n").encode()))
    tmp = out.with_name(out.name + ".partial")
    tmp.write_bytes(gzip.compress(cpio_newc(entries), compresslevel=6, mtime=0))
    tmp.replace(out)
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m hypercore_netboot.initrd",
                                 description="Build the netboot client's initramfs (busybox, NIC "
                                             "drivers, /init that fetches hypercore.netroot=URL).")
    ap.add_argument("--modules", type=Path, required=True,
                    help="the kernel's module directory, e.g. /usr/lib/modules/6.1.0-28-amd64")
    ap.add_argument("--busybox", type=Path, default=Path("/bin/busybox"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        missing = build(a.modules, a.busybox, a.out)
    except (InitrdError, OSError) as e:
        print(f"hypercore-netboot: {e}", file=sys.stderr)
        return 1
    if missing:
        print(f"hypercore-netboot: not in this kernel (left out): {', '.join(missing)}", file=sys.stderr)
    print(f"hypercore-netboot: wrote {a.out} ({a.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
