"""Interactive mode driven on a terminal with pexpect, against a recorded
machine in dry-run: the questions, the same validation and plan as an answer
file, the confirmation, and the saved answers."""

from __future__ import annotations

import os
import stat

import pexpect
import pytest
import yaml

from tests.installer.conftest import MACHINES, PYTHON, REPO, cli_env
from hypercore_installer import answers as answers_mod

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g admin@laptop"


def spawn(*args: str) -> pexpect.spawn:
    child = pexpect.spawn(PYTHON, ["-m", "hypercore_installer.cli", *args], env=cli_env(), cwd=str(REPO),
                          encoding="utf-8", timeout=30, dimensions=(50, 200))
    return child


def expect(child, pattern):
    try:
        child.expect(pattern)
    except (pexpect.TIMEOUT, pexpect.EOF):
        pytest.fail(f"expected {pattern!r}; the console showed:\n{child.before}")


def test_interactive_static_network_password_and_new_cluster(tmp_path):
    saved = tmp_path / "answers.yaml"
    child = spawn("interactive", "--machine", str(MACHINES / "workstation-nvme-usb.json"), "--dry-run",
                  "--save-answers", str(saved))
    expect(child, "Disks on this machine:")
    expect(child, r"3  /dev/sdb .* holds: ext4")
    expect(child, r"4  /dev/sdc .* boot medium \(never installed to\)")
    expect(child, r"Hostname \[hypercore\]: ")
    child.sendline("bad_name")
    expect(child, "use letters, digits and '-'")
    child.sendline("node7")
    expect(child, r"Target disk for the system \(number or path\): ")
    child.sendline("4")                                      # the USB stick: not offered
    expect(child, "/dev/sdc cannot be used here")
    child.sendline("/dev/nvme0n1")
    expect(child, "Separate disks for the BTRFS data")
    child.sendline("")
    expect(child, r"Disks for Ceph OSDs \(numbers separated by spaces\): ")
    child.sendline("2 3")
    expect(child, r"/dev/sdb holds an ext4 filesystem labelled 'backup' on sdb")
    expect(child, r"Erase these disks\? \(yes/no\) \[no\]: ")
    child.sendline("yes")
    expect(child, r"Network interfaces: enp3s0 \(d8:bb:c1:0a:1b:2c, up, 192.168.1.23/24\)")
    expect(child, r"Network: dhcp or static \[dhcp\]: ")
    child.sendline("static")
    expect(child, r"Interface \[enp3s0\]: ")
    child.sendline("")
    expect(child, r"Address \(CIDR\): ")
    child.sendline("192.168.1.40")
    expect(child, "with its prefix length")
    child.sendline("192.168.1.40/24")
    expect(child, "Gateway: ")
    child.sendline("10.0.0.1")
    expect(child, "the gateway must be inside 192.168.1.0/24")
    child.sendline("192.168.1.1")
    expect(child, r"DNS servers \[192.168.1.1\]: ")
    child.sendline("")
    expect(child, r"Time zone \[UTC\]: ")
    child.sendline("Europe/Lisbon")
    expect(child, r"Root SSH public key \(one line; empty to skip\): ")
    child.sendline("")
    expect(child, r"Root password \(empty to skip\): ")
    child.sendline("")
    expect(child, "root never has an empty password")
    expect(child, r"Root SSH public key \(one line; empty to skip\): ")
    child.sendline("")
    expect(child, r"Root password \(empty to skip\): ")
    child.sendline("correct horse")
    expect(child, "Root password again: ")
    child.sendline("correct horse")
    expect(child, r"Ceph: start a new cluster or join an existing one \(new/join\) \[new\]: ")
    child.sendline("new")
    expect(child, r"Serve network boot \(PXE\) to client machines from this node\? \(yes/no\) \[no\]: ")
    child.sendline("")
    expect(child, f"Answers saved to {saved}")
    expect(child, r"Install Hypercore on /dev/nvme0n1")
    expect(child, r"DESTRUCTIVE  erase old signatures on /dev/sdb \(osd\)")
    expect(child, r"Type the target disk's name \(nvme0n1\) to install, anything else cancels: ")
    child.sendline("nvme0n1")
    expect(child, r"\+ copy /dev/sdc \(the image in its first \d+ bytes, read-only\) to /dev/nvme0n1")
    expect(child, "Dry run complete; nothing was changed.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "correct horse" not in child.before

    doc = yaml.safe_load(saved.read_text())
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert answers_mod.check(doc) == []
    # Saved by their stable /dev/disk/by-id names.
    assert doc["target"] == {"path": "/dev/disk/by-id/nvme-Samsung_SSD_980_500GB_S64DNX0R123456A"}
    assert doc["wipe"] is True
    assert doc["ceph"] == {"mode": "new", "osd_disks": ["/dev/disk/by-id/ata-ST2000DM008-2FR102_ZL2ABC12",
                                                        "/dev/disk/by-id/ata-ST2000DM008-2FR102_ZL2ABC34"]}
    assert doc["network"] == {"mode": "static", "interface": "enp3s0", "address": "192.168.1.40/24",
                              "gateway": "192.168.1.1", "dns": ["192.168.1.1"]}
    assert doc["root"]["password_hash"].startswith("$6$") and "ssh_keys" not in doc["root"]
    assert doc["timezone"] == "Europe/Lisbon" and doc["hostname"] == "node7"


def test_interactive_join_with_key_and_cancel(tmp_path):
    child = spawn("--machine", str(MACHINES / "twin-disks.json"), "--dry-run")   # no command: interactive
    expect(child, r"Hostname \[hypercore\]: ")
    child.sendline("node2")
    expect(child, "Target disk")
    child.sendline("1")
    expect(child, "Separate disks for the BTRFS data")
    child.sendline("2")
    expect(child, "Disks for Ceph OSDs")
    child.sendline("1")                                      # already the target
    expect(child, "/dev/sda cannot be used here")
    child.sendline("3 4")
    expect(child, r"Network: dhcp or static \[dhcp\]: ")
    child.sendline("")
    expect(child, r"Time zone \[UTC\]: ")
    child.sendline("")
    expect(child, "Root SSH public key")
    child.sendline(KEY)
    expect(child, r"Root password \(empty to skip\): ")
    child.sendline("")
    expect(child, r"\(new/join\) \[new\]: ")
    child.sendline("join")
    expect(child, r"Join token .*\[\]: |Join token .*: ")
    child.sendline("bm90LWEtdG9rZW4")                     # base64 of "not-a-token"
    expect(child, "join token")                           # the complaint names it; asked again
    child.sendline("")                                    # empty: the monitors and the key instead
    expect(child, "Monitor addresses of the existing cluster")
    child.sendline("192.168.1.21 192.168.1.22:6789")
    expect(child, r"Cluster key \(ceph auth get-key client.admin\): ")
    child.sendline("not-a-key")
    expect(child, "a cephx key is 40 base64 characters")
    child.sendline("AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==")
    expect(child, r"Serve network boot \(PXE\) to client machines from this node\? \(yes/no\) \[no\]: ")
    child.sendline("no")
    expect(child, r"data: /dev/sdb \(Samsung SSD 870 EVO 1TB")
    expect(child, r"Type the target disk's name \(sda\)")
    child.sendline("sdb")
    expect(child, "cancelled: the target disk's name was not typed; nothing was changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "+ dd" not in child.before


def test_interactive_join_with_a_token(tmp_path):
    import time

    from hypercore.cluster import token as tokmod
    tok = tokmod.encode(tokmod.Token(fsid="6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f", mons=["192.168.1.21"],
                                     entity="client.join-00aa11bb22cc", key="AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==",
                                     expires=int(time.time()) + 3600))
    expired = tokmod.encode(tokmod.Token(fsid="6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f", mons=["192.168.1.21"],
                                         entity="client.join-00aa11bb22cc",
                                         key="AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==", expires=1000))
    saved = tmp_path / "answers.yaml"
    child = spawn("interactive", "--machine", str(MACHINES / "twin-disks.json"), "--dry-run",
                  "--save-answers", str(saved))
    for prompt, answer in ((r"Hostname \[hypercore\]: ", "node2"), ("Target disk", "1"),
                           ("Separate disks for the BTRFS data", "2"), ("Disks for Ceph OSDs", "3 4"),
                           (r"Network: dhcp or static \[dhcp\]: ", ""), (r"Time zone \[UTC\]: ", ""),
                           ("Root SSH public key", KEY), (r"Root password \(empty to skip\): ", ""),
                           (r"\(new/join\) \[new\]: ", "join"), ("Join token", expired)):
        expect(child, prompt)
        child.sendline(answer)
    expect(child, "the join token expired")
    child.sendline(tok)
    expect(child, r"Serve network boot")
    child.sendline("no")
    expect(child, r"Type the target disk's name \(sda\)")
    child.sendline("sda")
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    doc = yaml.safe_load(saved.read_text())
    assert doc["ceph"]["mode"] == "join" and doc["ceph"]["join"] == {"token": tok}, doc["ceph"]
    assert "mon_hosts" not in doc["ceph"] and "key" not in doc["ceph"]


def test_interactive_network_boot_for_clients(tmp_path):
    saved = tmp_path / "answers.yaml"
    child = spawn("interactive", "--machine", str(MACHINES / "rack-server-reinstall.json"), "--dry-run",
                  "--save-answers", str(saved))
    for prompt, answer in ((r"Hostname \[hypercore\]: ", "node9"), ("Target disk", "1"),
                           ("Separate disks for the BTRFS data", ""), ("Disks for Ceph OSDs", "2")):
        expect(child, prompt)
        child.sendline(answer)
    while True:                      # the recorded disks hold data: agree to erase them
        i = child.expect([r"Erase these disks\? \(yes/no\) \[no\]: ", r"Network: dhcp or static"])
        if i == 1:
            break
        child.sendline("yes")
    child.sendline("")
    for prompt, answer in ((r"Time zone \[UTC\]: ", ""), ("Root SSH public key", KEY),
                           (r"Root password \(empty to skip\): ", ""), (r"\(new/join\) \[new\]: ", ""),
                           (r"Serve network boot \(PXE\).*\[no\]: ", "yes"),
                           (r"Interface facing the clients \[enp4s0\]: ", "eth9")):
        expect(child, prompt)
        child.sendline(answer)
    expect(child, "choose one of eno1, enp4s0")
    child.sendline("")
    expect(child, r"dhcp or proxy \[auto\]: ")
    child.sendline("dhcp")
    expect(child, r"address on the client network \(CIDR\) \[192.168.50.1/24\]: ")
    child.sendline("10.9.0.1/16")
    expect(child, r"First address handed to clients \[10.9.0.100\]: ")
    child.sendline("10.8.0.1")
    expect(child, "10.8.0.1 is outside 10.9.0.0/16")
    child.sendline("")
    expect(child, r"Last address handed to clients \[10.9.0.200\]: ")
    child.sendline("")
    expect(child, r"Also offer diskless nodes.*\[no\]: ")
    child.sendline("yes")
    expect(child, f"Answers saved to {saved}")
    child.sendline("")               # no confirmation typed: cancelled, nothing changed
    child.expect(pexpect.EOF)
    doc = yaml.safe_load(saved.read_text())
    assert answers_mod.check(doc) == []
    assert doc["netboot"] == {"enabled": True, "interface": "enp4s0", "mode": "dhcp", "address": "10.9.0.1/16",
                              "range": {"start": "10.9.0.100", "end": "10.9.0.200"}, "diskless": True}
