"""A guest small enough to boot under nested TCG in seconds, and how the
appliance tests put it on a disk and wait for its line."""

from __future__ import annotations

import base64


def boot_sector(message: str) -> bytes:
    """A 512-byte MBR: write message to COM1 (0x3f8), then halt forever."""
    text = (message + "\r\n").encode() + b"\0"
    code = bytes([
        0xFA,                    # cli
        0x31, 0xC0,              # xor ax, ax
        0x8E, 0xD8,              # mov ds, ax
        0xBE, 0x17, 0x7C,        # mov si, 0x7c17 (the message, right after this code)
        0xBA, 0xF8, 0x03,        # mov dx, 0x3f8
        0xFC,                    # cld
        0xAC,                    # next: lodsb
        0x84, 0xC0,              # test al, al
        0x74, 0x03,              # jz done
        0xEE,                    # out dx, al
        0xEB, 0xF8,              # jmp next
        0xF4,                    # done: hlt
        0xEB, 0xFD,              # jmp done
    ])
    assert len(code) == 0x17
    sector = code + text
    return sector + b"\0" * (510 - len(sector)) + b"\x55\xaa"


def put_boot_sector(machine, path: str, message: str, size: str | None = None) -> None:
    """Write boot_sector(message) to path in the guest (then grown to size, e.g. 8M: a disk image)."""
    blob = base64.b64encode(boot_sector(message)).decode()
    machine.succeed(f"echo {blob} | base64 -d > {path}" + (f" && truncate -s {size} {path}" if size else ""))


def write_boot_sector(machine, rbd_image: str, message: str, user: str = "admin") -> None:
    """boot_sector(message) into the first sector of the RBD image POOL/NAME, as cephx user `user`."""
    put_boot_sector(machine, "/tmp/mbr", message)
    machine.succeed(f"qemu-io -f raw -c 'write -s /tmp/mbr 0 512' rbd:{rbd_image}:id={user}")


def wait_for_vm_line(machine, vm: str, text: str, timeout: float = 600) -> None:
    """Until the VM's serial console log (hypercore vm's run directory) holds text."""
    machine.wait_until_succeeds(f"grep -q {text} /var/lib/hypercore/vms/{vm}/run/console.log",
                                timeout=timeout, interval=5)
