"""A guest small enough to boot under nested TCG in seconds."""

from __future__ import annotations


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
