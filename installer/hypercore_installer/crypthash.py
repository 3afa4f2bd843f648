"""crypt(3) password hashes the installed system can check a password
against (libxcrypt, as pam_unix and `chpasswd --encrypted` use it), checked
by their structure: the scheme, its parameters, the salt and a hash part of
exactly the length (and last character) that scheme produces. A hash cut off
when pasted, or edited by hand, would be written to /etc/shadow and never
match any password; `problem` says so before anything is written. The hash
is never part of a message."""

from __future__ import annotations

import re

# The crypt alphabets: sha-crypt and yescrypt count ./0-9A-Za-z, bcrypt ./A-Za-z0-9.
CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BCRYPT64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

NAMES = {"y": "yescrypt", "gy": "gost-yescrypt", "6": "SHA-512 crypt", "5": "SHA-256 crypt",
         "2a": "bcrypt", "2b": "bcrypt", "2y": "bcrypt"}
REFUSED = {"1": "MD5 crypt ($1$) is too weak",
           "2x": "$2x$ is bcrypt's variant for hashes made by an old, buggy bcrypt",
           "7": "scrypt ($7$) is not one of the schemes the installer checks"}
SUPPORTED = "yescrypt ($y$), SHA-512 ($6$), SHA-256 ($5$) or bcrypt ($2b$)"


def _chars(text: str, alphabet: str) -> bool:
    return all(c in alphabet for c in text)


def _encoded(what: str, text: str, length: int, last_values: int, alphabet: str = CRYPT64) -> str | None:
    """`text` is `length` characters of `alphabet` whose last one is among the
    first `last_values` (the unused bits of the last character are zero)."""
    if len(text) != length:
        cut = " (is it cut off?)" if len(text) < length else ""
        return f"its {what} has {len(text)} characters, not {length}{cut}"
    if not _chars(text, alphabet):
        return f"its {what} has characters other than {alphabet[:2]}, digits and letters"
    if alphabet.index(text[-1]) >= last_values:
        return f"its {what} ends in a character that scheme never produces (was it edited?)"
    return None


def _sha(fields: list[str], length: int, last_values: int) -> str | None:
    if fields and fields[0].startswith("rounds="):
        rounds = fields.pop(0)[len("rounds="):]
        if not re.fullmatch(r"[1-9][0-9]{3,8}", rounds):
            return "its rounds= is not a number from 1000 to 999999999"
    if len(fields) != 2:
        return "it is not $ID$SALT$HASH" + (" (the hash part is missing)" if len(fields) == 1 else "")
    salt, digest = fields
    if len(salt) > 16 or not _chars(salt, CRYPT64):
        return "its salt is not up to 16 characters of ./, digits and letters"
    return _encoded("hash part", digest, length, last_values)


def _yescrypt(fields: list[str]) -> str | None:
    if len(fields) != 3:
        return "it is not $y$PARAMS$SALT$HASH" + (" (the hash part is missing)" if len(fields) == 2 else "")
    params, salt, digest = fields
    if not params or not _chars(params, CRYPT64):
        return "its parameters are not ./, digits and letters"
    # The salt is whole bytes in crypt-base64: 2 to 86 characters, never 1 more than a multiple of 4.
    if not 2 <= len(salt) <= 86 or len(salt) % 4 == 1 or not _chars(salt, CRYPT64) \
            or CRYPT64.index(salt[-1]) >= {2: 4, 3: 16, 0: 64}[len(salt) % 4]:
        return "its salt is not one yescrypt makes"
    return _encoded("hash part", digest, 43, 16)


def _bcrypt(fields: list[str]) -> str | None:
    if len(fields) != 2 or not re.fullmatch(r"0[4-9]|[12][0-9]|3[01]", fields[0]):
        return "it is not $2b$COST$SALTHASH (COST 04 to 31)"
    rest = fields[1]
    if len(rest) != 53:
        cut = " (is it cut off?)" if len(rest) < 53 else ""
        return f"its salt and hash have {len(rest)} characters, not 53{cut}"
    if not _chars(rest, BCRYPT64):
        return "its salt and hash have characters other than ./, letters and digits"
    # 16 salt bytes in 22 characters, 23 hash bytes in 31: the last one's low bits are zero.
    if BCRYPT64.index(rest[21]) % 16 or BCRYPT64.index(rest[-1]) % 4:
        return "its salt or hash ends in a character bcrypt never produces (was it edited?)"
    return None


def problem(value: str) -> str | None:
    """None when value is a complete hash of a supported scheme, else what is
    wrong with it, as words to follow the field's name (never the value)."""
    m = re.fullmatch(r"\$([0-9a-z]+)\$(.*)", value, re.S)
    if not m:
        return "is not a crypt hash; plain passwords are refused"
    scheme, fields = m.group(1), m.group(2).split("$")
    if scheme in REFUSED:
        return f"is not accepted: {REFUSED[scheme]}; use {SUPPORTED}"
    if scheme not in NAMES:
        return f"is a ${scheme}$ hash, which is not accepted; use {SUPPORTED}"
    if scheme in ("6", "5"):
        why = _sha(fields, 86, 4) if scheme == "6" else _sha(fields, 43, 16)
    elif scheme in ("y", "gy"):
        why = _yescrypt(fields)
    else:
        why = _bcrypt(fields)
    return f"is not a complete {NAMES[scheme]} hash (${scheme}$): {why}" if why else None
