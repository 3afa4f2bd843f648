"""Pure text builders: the dnsmasq configuration, the iPXE menu, the HTTP
server's environment file and the .network file for the static address.

Client architectures (DHCP option 93, RFC 4578 + IANA): 0 BIOS gets
undionly.kpxe, 7 and 9 (UEFI x86-64; 9 covers an erratum) get snponly.efi,
16 (UEFI HTTP boot) gets http://SERVER:PORT/ipxe.efi with the vendor class
HTTPClient echoed back. iPXE itself (option 175 or user class "iPXE") gets
the menu script menu.ipxe instead of another iPXE binary.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import TFTP_ROOT
from .settings import Mode, Settings

BIOS_BOOT = "undionly.kpxe"
UEFI_BOOT = "snponly.efi"
HTTP_BOOT = "ipxe.efi"
MENU = "menu.ipxe"
# Files the HTTP root must hold (made by the image build); the menu is written there too.
KERNEL, INITRD, ROOT_IMAGE = "vmlinuz", "initrd.img", "root.squashfs"
# Network installs: the answer file the operator puts there, the image the installer kept.
ANSWERS, IMAGE = "hypercore-answers.yaml", "hypercore.raw.zst"
IMAGE_JSON = IMAGE + ".json"
# The kernel command line keys that carry each download's SHA-256: the client
# initramfs checks the root image, the installer the answers, the image and
# its description, each before using it.
NETROOT_SHA256 = "hypercore.netroot_sha256"
PINS = {ANSWERS: "hypercore.answers_sha256", IMAGE: "hypercore.source_sha256",
        IMAGE_JSON: "hypercore.source_json_sha256"}
# Diskless nodes: ceph.conf and the client.diskless keyring (netboot.diskless).
DISKLESS = "diskless"
KERNEL_ARGS = "console=tty0 console=ttyS0,115200"
LEASE_TIME = "12h"


@dataclass(frozen=True)
class Target:
    """Where the configuration is served: the resolved mode, the server's own
    address and the client network."""

    mode: Mode                           # dhcp or proxy, never auto
    server_ip: str
    network: str                         # e.g. 192.168.50.0/24

    def __post_init__(self):
        if self.mode not in (Mode.DHCP, Mode.PROXY):
            raise ValueError(f"render needs mode dhcp or proxy, not {self.mode}")


def dnsmasq_conf(s: Settings, t: Target, *, tftp_root: str = TFTP_ROOT,
                 leasefile: str | None = None, pidfile: str | None = None) -> str:
    """The dnsmasq configuration for settings s served as t."""
    net = ipaddress.IPv4Network(t.network)
    http = f"http://{t.server_ip}:{s.http_port}"
    lines = [
        "# Hypercore network boot, written by hypercore-netboot from the answer file's",
        f"# `netboot` section (mode {t.mode}); changes here are overwritten.",
        "port=0",                        # no DNS: this dnsmasq only does DHCP and TFTP
        f"interface={s.interface}",
        "bind-dynamic",
        "log-dhcp",
        "enable-tftp",
        f"tftp-root={tftp_root}",
    ]
    if leasefile:
        lines.append(f"dhcp-leasefile={leasefile}")
    if pidfile:
        lines.append(f"pid-file={pidfile}")
    if t.mode == Mode.DHCP:
        lines += [
            f"dhcp-range={s.range_start},{s.range_end},{net.netmask},{LEASE_TIME}",
            "dhcp-authoritative",
            # The node is not the clients' router: no default gateway.
            "dhcp-option=option:router",
        ]
        if s.diskless and s.ceph_network:
            # Diskless nodes reach Ceph (this node's own address) through this node.
            lines.append(f"dhcp-option=option:classless-static-route,{s.ceph_network},{t.server_ip}")
    else:
        lines.append(f"dhcp-range={net.network_address},proxy,{net.netmask}")
    lines += [
        "",
        "# Client architecture (option 93) and iPXE (option 175, user class iPXE).",
        "dhcp-match=set:bios,option:client-arch,0",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
        "dhcp-match=set:efihttp,option:client-arch,16",
        "dhcp-match=set:ipxe,175",
        "dhcp-userclass=set:ipxe,iPXE",
        "",
    ]
    if t.mode == Mode.DHCP:
        lines += [
            "# PXE ROMs chainload iPXE over TFTP; iPXE gets the menu script.",
            f"dhcp-boot=tag:bios,tag:!ipxe,{BIOS_BOOT},,{t.server_ip}",
            f"dhcp-boot=tag:efi64,tag:!ipxe,{UEFI_BOOT},,{t.server_ip}",
            f"dhcp-boot=tag:ipxe,{MENU},,{t.server_ip}",
        ]
    else:
        lines += [
            "# Proxy-DHCP: the site's DHCP server gives the address, this node the boot file",
            "# (PXE boot services, as LTSP does). Each client sees one item: it boots at once.",
            f'pxe-service=tag:!ipxe,x86PC,"Hypercore network boot (BIOS)",{BIOS_BOOT}',
            f'pxe-service=tag:!ipxe,X86-64_EFI,"Hypercore network boot (UEFI)",{UEFI_BOOT}',
            f'pxe-service=tag:!ipxe,BC_EFI,"Hypercore network boot (UEFI)",{UEFI_BOOT}',
            f'pxe-service=tag:ipxe,x86PC,"Hypercore menu",{MENU}',
            f'pxe-service=tag:ipxe,X86-64_EFI,"Hypercore menu",{MENU}',
            f'pxe-service=tag:ipxe,BC_EFI,"Hypercore menu",{MENU}',
        ]
    lines += [
        "# UEFI HTTP boot: a URL instead of a TFTP file, and the vendor class echoed back.",
        f"dhcp-boot=tag:efihttp,tag:!ipxe,{http}/{HTTP_BOOT}",
        "dhcp-option-force=tag:efihttp,option:vendor-class,HTTPClient",
    ]
    return "\n".join(lines) + "\n"


def _kernel(base: str, root: str, sha256: str | None) -> str:
    # BOOTIF: the initramfs tries the NIC iPXE booted from first. Without the
    # root's SHA-256 (the file is not served yet) the initramfs refuses to boot.
    pin = f" {NETROOT_SHA256}={sha256}" if sha256 else ""
    return (f"kernel {base}/{KERNEL} initrd={INITRD} {KERNEL_ARGS} "
            f"hypercore.netroot={base}/{root}{pin} BOOTIF=01-${{netX/mac:hexhyp}}")


def _pins(digests: dict, *names: str) -> str:
    return "".join(f" {PINS[n]}={digests[n]}" for n in names if digests.get(n))


def _root_entries(base: str, roots) -> tuple[str, str]:
    """Menu items and labels of the roots published from the repository (roots.Root)."""
    items = "".join(f"item {r.label}  Root {r.name}@{r.version} from the image repository (runs in RAM)\n"
                    for r in roots)
    labels = "".join(f":{r.label}\n{_kernel(base, r.path, r.sha256)} || goto failed\n"
                     f"initrd {base}/{INITRD} || goto failed\nboot || goto failed\n\n" for r in roots)
    return items, labels


def ipxe_menu(s: Settings, server_ip: str, roots=(), digests: dict | None = None) -> str:
    """The iPXE script every iPXE client runs: local disk, the live system,
    install this machine (the answer file and the image kept on the appliance),
    each root published from the image repository, a shell. digests: file name
    (ROOT_IMAGE, ANSWERS, IMAGE, IMAGE_JSON) -> SHA-256 of the served file; each
    kernel line carries those of the files its client downloads."""
    digests = digests or {}
    base = f"http://{server_ip}:{s.http_port}"
    boot = _kernel(base, ROOT_IMAGE, digests.get(ROOT_IMAGE))
    install = (f"hypercore.answers={base}/{ANSWERS}{_pins(digests, ANSWERS)} "
               f"hypercore.source={base}/{IMAGE}{_pins(digests, IMAGE, IMAGE_JSON)}")
    node_item = ("item node      Hypercore diskless node (VMs on this appliance's Ceph)\n"
                 if s.diskless else "")
    root_items, root_labels = _root_entries(base, roots)
    return f"""#!ipxe
# Hypercore network boot menu, written by hypercore-netboot; changes are overwritten.
:start
menu Hypercore network boot (server {server_ip})
item local     Boot from local disk
item live      Hypercore live system (runs in RAM)
item installer Install Hypercore on this machine ({base}/{ANSWERS})
{node_item}{root_items}item shell     iPXE shell
choose --timeout {s.menu_timeout * 1000} --default {s.menu_default} selected || goto local
goto ${{selected}}

:local
echo Booting from the local disk...
iseq ${{platform}} pcbios && sanboot --no-describe --drive 0x80 ||
exit

:live
{boot} || goto failed
initrd {base}/{INITRD} || goto failed
boot || goto failed

:installer
{boot} {install} || goto failed
initrd {base}/{INITRD} || goto failed
boot || goto failed

:node
{boot} hypercore.role=diskless hypercore.diskless={base}/{DISKLESS}/ || goto failed
initrd {base}/{INITRD} || goto failed
boot || goto failed

{root_labels}:shell
shell
goto start

:failed
echo Network boot failed; back to the menu in 5 seconds.
sleep 5
goto start
"""


def env_file(s: Settings, server_ip: str, http_root: str) -> str:
    """/etc/hypercore/netboot.env, read by hypercore-netboot-http.service."""
    return ("# Written by hypercore-netboot apply; read by hypercore-netboot-http.service.\n"
            f"NETBOOT_HTTP_ROOT={http_root}\nNETBOOT_HTTP_PORT={s.http_port}\nNETBOOT_HTTP_BIND={server_ip}\n")


def network_file(s: Settings) -> str:
    """The static address on the client-facing interface (dhcp mode), sorted
    before the installer's 10-hypercore.network so this one wins for it."""
    return ("# Written by hypercore-netboot apply: this node serves DHCP on this interface.\n"
            f"[Match]\nName={s.interface}\n\n[Network]\nAddress={s.address}\n"
            "DHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n")
