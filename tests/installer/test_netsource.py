"""Network installs check what they fetch: the description against its pin,
the image stream against its SHA-256 before its first MiB (the partition
table) is written. A real HTTP server; a plain file stands for the disk (the
loop-device install is in test_apply_loop.py)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from hypercore.errors import UserError
from hypercore_installer import netsource
from hypercore_installer.netsource import Pins
from tests.installer.test_sources import server  # noqa: F401  (fixture)

MiB = 1 << 20
IMAGE = os.urandom(3 * MiB + 4096)
SHA = hashlib.sha256(IMAGE).hexdigest()
SOURCE = {"partitions": [], "esp": {}, "root": {}, "image_bytes": len(IMAGE)}


def _description(sha: str | None = SHA) -> bytes:
    return json.dumps(netsource.description(SOURCE, sha)).encode()


def test_the_description_is_checked_and_gives_the_image_digest(server):
    doc = _description()
    server.routes["/hypercore.raw.json"] = [(200, doc)]
    url = server.url("/hypercore.raw")
    json_pin = hashlib.sha256(doc).hexdigest()
    assert netsource.describe_url(url, Pins(SHA, json_pin))["sha256"] == SHA
    # The description's own digest counts only when the description is pinned.
    assert netsource.describe_url(url, Pins(None, json_pin))["sha256"] == SHA
    with pytest.raises(UserError, match=f"no SHA-256 for the image {url}"):
        netsource.describe_url(url, Pins())
    with pytest.raises(UserError, match="hypercore.raw.json does not match hypercore.source_json_sha256 "
                                        f"from the boot menu: expected {'0' * 64}, got {json_pin}"):
        netsource.describe_url(url, Pins(SHA, "0" * 64))
    with pytest.raises(UserError, match="the menu is older than the image"):
        netsource.describe_url(url, Pins("1" * 64, json_pin))


def test_pins_come_from_the_options_else_the_kernel_command_line(tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"console=ttyS0 hypercore.source=http://x/hypercore.raw hypercore.source_sha256={SHA} "
                       f"hypercore.source_json_sha256={'A' * 64}\n")
    assert netsource.pins(path=str(cmdline)) == Pins(SHA, "a" * 64)
    assert netsource.pins("b" * 64, None, path=str(cmdline)) == Pins("b" * 64, None)
    with pytest.raises(UserError, match="hypercore.source_sha256=12ab is not a SHA-256"):
        netsource.pins("12ab")


def _disk(tmp_path):
    """A 'disk' holding an old partition table at both ends."""
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xaa" * (8 * MiB))
    return disk


def test_a_good_stream_is_written_whole(server, tmp_path):
    server.routes["/hypercore.raw"] = [(200, IMAGE)]
    disk = _disk(tmp_path)
    netsource.download(server.url("/hypercore.raw"), str(disk), len(IMAGE), SHA, print)
    data = disk.read_bytes()
    assert data[:len(IMAGE)] == IMAGE and data[-MiB:] == bytes(MiB)


@pytest.mark.parametrize("damage", ["altered", "short"])
def test_a_damaged_stream_leaves_no_partition_table(server, tmp_path, damage):
    body = IMAGE[:2 * MiB] + bytes([IMAGE[2 * MiB] ^ 1]) + IMAGE[2 * MiB + 1:] if damage == "altered" \
        else IMAGE[:-10]
    server.routes["/hypercore.raw"] = [(200, body)]
    disk = _disk(tmp_path)
    url = server.url("/hypercore.raw")
    with pytest.raises(UserError) as e:
        netsource.download(url, str(disk), len(IMAGE), SHA, print)
    what = (f"the image {url} does not match hypercore.source_sha256 from the boot menu: expected {SHA}, got "
            f"{hashlib.sha256(body).hexdigest()}" if damage == "altered"
            else f"the download of {url} stopped after {len(IMAGE) - 10} of {len(IMAGE)} bytes")
    assert e.value.message == f"{what}; {disk} was left without a partition table (nothing bootable was written)"
    data = disk.read_bytes()
    assert data[:MiB] == bytes(MiB) and data[-MiB:] == bytes(MiB)
    assert data[MiB:2 * MiB] == IMAGE[MiB:2 * MiB]          # the rest streamed; the head held back


def _zst(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)


def test_a_compressed_image_is_hashed_as_downloaded_and_written_decompressed(server, tmp_path):
    """hypercore.raw.zst: the pin is the digest of the bytes on the wire; the disk gets the image."""
    image = IMAGE + bytes(6 * MiB)                        # a sparse tail, as in the real image
    packed = _zst(image)
    assert len(packed) < len(image) // 2
    server.routes["/hypercore.raw.zst"] = [(200, packed)]
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xaa" * (16 * MiB))
    netsource.download(server.url("/hypercore.raw.zst"), str(disk), len(image),
                       hashlib.sha256(packed).hexdigest(), print)
    data = disk.read_bytes()
    assert data[:len(image)] == image and data[-MiB:] == bytes(MiB)


@pytest.mark.parametrize("damage", ["altered", "short"])
def test_a_damaged_compressed_stream_leaves_no_partition_table(server, tmp_path, damage):
    image = IMAGE + bytes(6 * MiB)
    packed = _zst(image)
    sha = hashlib.sha256(packed).hexdigest()
    mid = len(packed) // 2
    body = packed[:mid] + bytes([packed[mid] ^ 1]) + packed[mid + 1:] if damage == "altered" else packed[:mid]
    server.routes["/hypercore.raw.zst"] = [(200, body)]
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xaa" * (16 * MiB))
    url = server.url("/hypercore.raw.zst")
    with pytest.raises(UserError) as e:
        netsource.download(url, str(disk), len(image), sha, print)
    assert e.value.message.endswith(f"{disk} was left without a partition table (nothing bootable was written)")
    data = disk.read_bytes()
    assert data[:MiB] == bytes(MiB) and data[-MiB:] == bytes(MiB)


def test_packing_hashes_what_it_writes(tmp_path):
    from hypercore_installer.imagefile import compress
    src = tmp_path / "img"
    src.write_bytes(IMAGE + bytes(8 * MiB))
    sha = compress(str(src), str(tmp_path / "img.zst"))
    packed = (tmp_path / "img.zst").read_bytes()
    assert sha == hashlib.sha256(packed).hexdigest()
    import zstandard
    assert zstandard.ZstdDecompressor().decompress(packed) == src.read_bytes()
