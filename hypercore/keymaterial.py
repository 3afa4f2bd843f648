"""Recognising key material in text: what must never be served to the
client network (the netboot HTTP server refuses such a file) nor shown."""

from __future__ import annotations

import re

PATTERNS = [
    ("a cephx key", re.compile(rb"AQ[A-Za-z0-9+/]{36}==")),
    ("a private key", re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
    ("a password hash", re.compile(rb"\$(y|gy|7|6|5|2[abxy])\$[./A-Za-z0-9$=,-]{8,}")),
    # base64url of a join token's JSON, which starts {"entity":"client.join-
    ("a join token", re.compile(rb"eyJlbnRpdHkiOiJjbGllbnQuam9pbi0")),
]
SCAN_LIMIT = 4 << 20      # bigger files (images, squashfs) are not text the operator writes


def found_in(data: bytes) -> str | None:
    """What kind of key material data holds (the first found), or None."""
    for what, pattern in PATTERNS:
        if pattern.search(data):
            return what
    return None
