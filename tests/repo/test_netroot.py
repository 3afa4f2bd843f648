"""Publishing a version as a network-boot root, on a real BTRFS loop device:
a squashfs made with mksquashfs, the file under the HTTP root, the menu, prune."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from hypercore.run import run
from tests.repo.nodes import write_image

pytestmark = pytest.mark.integration

ANSWERS = {"target": {"path": "/dev/vda"}, "hostname": "node1",
           "root": {"ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g admin@laptop"]},
           "ceph": {"mode": "new", "osd_disks": ["/dev/vdb"]},
           "netboot": {"enabled": True, "interface": "enp4s0", "mode": "dhcp", "address": "192.168.50.1/24",
                       "range": {"start": "192.168.50.100", "end": "192.168.50.200"}, "http_port": 8067}}


def squashfs(top, name: str, text: str):
    tree = top / f"{name}.tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text(text)
    out = top / f"{name}.squashfs"
    run(["mksquashfs", str(tree), str(out), "-quiet", "-noappend", "-no-progress"])
    return out


@pytest.fixture
def netboot(pair, monkeypatch):
    """Node a's netboot HTTP and TFTP roots on its BTRFS (so a publish is a reflink), as apply left them."""
    a = pair.a
    http, tftp = a.mnt / "netboot", a.dir / "tftpboot"
    env, answers = a.dir / "netboot.env", a.dir / "answers.yaml"
    env.write_text(f"NETBOOT_HTTP_ROOT={http}\nNETBOOT_HTTP_PORT=8067\nNETBOOT_HTTP_BIND=192.168.50.1\n")
    answers.write_text(yaml.safe_dump(ANSWERS))
    for k, v in (("HYPERCORE_NETBOOT_HTTP_ROOT", http), ("HYPERCORE_NETBOOT_TFTP_ROOT", tftp),
                 ("HYPERCORE_NETBOOT_ENV_FILE", env), ("HYPERCORE_NETBOOT_ANSWERS", answers)):
        monkeypatch.setenv(k, str(v))
    return http, tftp


def test_publish_a_squashfs_as_netboot_root(pair, netboot):
    a = pair.a
    http, tftp = netboot
    for i in (1, 2):
        a.hc("add", "tiny", str(squashfs(pair.top, f"v{i}", f"tiny-{i}\n")))
    out = a.hc("publish", "tiny@v1", "--netboot").stdout
    served = http / "roots" / "tiny@v1.squashfs"
    assert f"published tiny@v1 as the netboot root {served}" in out
    assert "the network boot menu lists 1 published root(s)" in out
    assert served.read_bytes() == (a.repo / "tiny/v1/snapshot/v1.squashfs").read_bytes()
    assert served.stat().st_mode & 0o777 == 0o644
    # No temporary left; the SHA-256 recorded next to it is the file's, on the menu's kernel line.
    assert sorted(p.name for p in (http / "roots").iterdir()) == ["tiny@v1.squashfs", "tiny@v1.squashfs.sha256"]
    sha = hashlib.sha256(served.read_bytes()).hexdigest()
    assert (http / "roots/tiny@v1.squashfs.sha256").read_text() == f"{sha}  tiny@v1.squashfs\n"
    for menu in (http / "menu.ipxe", tftp / "menu.ipxe"):
        text = menu.read_text()
        assert "item root-tiny-v1" in text
        assert ("hypercore.netroot=http://192.168.50.1:8067/roots/tiny@v1.squashfs "
                f"hypercore.netroot_sha256={sha} ") in text
    # The file is what a client downloads: unsquashfs reads it back.
    listing = run(["unsquashfs", "-l", str(served)]).stdout
    assert "squashfs-root/etc/hostname" in listing

    # Held while published: prune keeps it.
    a.hc("add", "tiny", str(squashfs(pair.top, "v3", "tiny-3\n")))
    out = a.hc("prune", "tiny", "--keep", "1").stdout
    assert f"kept tiny@v1: in use by netboot root {served}" in out and "pruned tiny@v2" in out
    assert a.versions("tiny") == ["v1", "v3"]

    out = a.hc("publish", "tiny@v1", "--netboot", "--unpublish").stdout
    assert "unpublished the netboot root tiny@v1" in out and not served.exists()
    assert not (http / "roots/tiny@v1.squashfs.sha256").exists()
    assert "root-tiny" not in (http / "menu.ipxe").read_text()
    assert "pruned tiny@v1" in a.hc("prune", "tiny", "--keep", "1").stdout
    p = a.hc("publish", "tiny@v3", "--netboot", "--unpublish", ok=False)
    assert "tiny@v3 is not published as a netboot root" in p.stderr


def test_only_a_squashfs_can_be_a_netboot_root(pair, netboot):
    a = pair.a
    http, _ = netboot
    img = pair.top / "disk.raw"
    write_image(img, 1 << 20, 1, [(0, 4096)])
    a.hc("add", "deb", str(img))
    p = a.hc("publish", "deb", "--netboot", ok=False)
    assert p.stderr.splitlines()[0] == ("hypercore: deb@v1 is not a squashfs image (disk.raw does not start "
                                        "with 'hsqs'), so it cannot be a netboot root")
    assert p.stderr.splitlines()[1].startswith("  hint: ") and len(p.stderr.splitlines()) == 2
    assert not (http / "roots").exists() and not (a.repo / "deb/v1/netboot.json").exists()
    assert "pruned" not in a.hc("prune", "deb", "--keep", "1").stdout     # only one version: nothing to do
