"""End to end, in one live boot of the USB image (firmware boot):

1. an invalid answer file given as a systemd credential (QEMU fw_cfg) is found
   at boot, every problem is shown, nothing is installed, and the operator
   then drives the installer's dialogue on the serial console, onto /dev/vda;
2. an install onto /dev/vdc is killed (SIGKILL) in the middle of apply, then
   the same command is run again and finishes from its journal.

The installed disks' contents are checked from the live system.
"""

from __future__ import annotations

import pytest

from tests.machine import Machine

pytestmark = pytest.mark.boot

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
       "e2e@hypercore-tests")

RESUME_ANSWERS = f"""\
version: 1
target: {{path: /dev/disk/by-id/virtio-HCDISK2}}
hostname: node3
root: {{ssh_keys: ["{KEY}"]}}
ceph: {{mode: new, osd_disks: [/dev/disk/by-id/virtio-HCDISK3]}}
"""


# An operator's mistake: a plain-text password under a key that does not exist.
BAD_ANSWERS = """\
version: 1
target: {path: /dev/vda}
hostname: node2
root: {password: hunter2}
ceph: {mode: new, osd_disks: [/dev/vdb]}
"""


@pytest.fixture(scope="module")
def live(image, tmp_path_factory):
    work = tmp_path_factory.mktemp("live-i")
    (work / "bad-answers.yaml").write_text(BAD_ANSWERS)
    m = Machine(image, name="live-interactive", workdir=work / "m",
                firmware="uefi", boot_device="usb", memory_mb=3072,
                disks=["12G", "8G", "12G", "8G"],
                fw_cfg={"opt/io.systemd.credentials/hypercore.answers": work / "bad-answers.yaml"})
    with m:
        yield m


def console_answer(m: Machine, prompt: str, reply: str, timeout: float = 120) -> None:
    """Wait for prompt (a regex) after what was already matched, then type reply."""
    match = m.wait_for_console_text(prompt, timeout=timeout, since=m.console_mark)
    m.console_mark = match.end()
    m.send_console(reply + "\r")


def partition(machine, disk: str, name: str, column: str = "PARTLABEL") -> str:
    """The partition of disk whose PARTLABEL (or filesystem LABEL) is name."""
    out = machine.succeed(f"lsblk -n -l -o PATH,{column} {disk}")
    found = [line.split()[0] for line in out.splitlines() if line.split()[1:] == [name]]
    assert len(found) == 1, f"{disk}: no single partition {column}={name}:\n{out}"
    return found[0]


def test_bad_credential_answers_install_nothing_then_the_dialogue_on_the_serial_console(live):
    found = live.wait_for_console_text(r"Answer file: .*from the systemd credential hypercore\.answers",
                                       timeout=900)
    refused = live.wait_for_console_text(r"problems? found; nothing was installed", timeout=300,
                                         since=found.end())
    live.wait_for_console_text(r"root\.password: unknown key 'password'", timeout=60, since=refused.end())
    live.wait_for_console_text(r"did you mean `password_hash`", timeout=60, since=refused.end())
    assert "hunter2" not in live.console_text()          # a password is never echoed back
    live.fail("test -e /run/hypercore-install/journal.json")   # no install was started
    prompt = live.wait_for_console_text(r"root@hypercore:~# ", timeout=300)
    live.console_mark = prompt.end()
    live.send_console("hypercore-install\r")
    console_answer(live, r"Hostname \[hypercore\]: ", "node2")
    console_answer(live, r"Target disk for the system \(number or path\): ", "/dev/sda")
    console_answer(live, r"/dev/sda cannot be used here", "/dev/vda")   # the USB stick is refused
    console_answer(live, r"Separate disks for the BTRFS data.*: ", "")
    console_answer(live, r"Disks for Ceph OSDs \(numbers separated by spaces\): ", "/dev/vdb")
    console_answer(live, r"Network: dhcp or static \[dhcp\]: ", "")
    console_answer(live, r"Time zone \[UTC\]: ", "")
    console_answer(live, r"Root SSH public key \(one line; empty to skip\): ", KEY)
    console_answer(live, r"Root password \(empty to skip\): ", "")
    console_answer(live, r"Ceph: start a new cluster or join an existing one \(new/join\) \[new\]: ", "")
    console_answer(live, r"Serve network boot \(PXE\) to client machines from this node\? \(yes/no\) \[no\]: ", "")
    console_answer(live, r"Type the target disk's name \(vda\) to install, anything else cancels: ",
                   "vda", timeout=300)
    live.wait_for_console_text(r"Hypercore is installed on /dev/vda", timeout=1200,
                               since=live.console_mark)
    # What the dialogue installed: the copied system, configured from the answers.
    live.succeed(f"mkdir -p /mnt/t && mount {partition(live, '/dev/vda', 'hypercore-root')} /mnt/t")
    try:
        assert live.succeed("cat /mnt/t/etc/hostname").strip() == "node2"
        assert KEY in live.succeed("cat /mnt/t/root/.ssh/authorized_keys")
        live.fail("test -e /mnt/t/etc/hypercore/live")
        answers = live.succeed("cat /mnt/t/etc/hypercore/answers.yaml")
        assert "virtio-HCDISK1" in answers and "mode: new" in answers
        assert live.succeed("stat -c %a /mnt/t/etc/hypercore/answers.yaml").strip() == "600"
    finally:
        live.succeed("umount /mnt/t")
    assert partition(live, "/dev/vda", "hypercore-data", "LABEL")
    # The installed disk does not share the stick's partition-table id.
    ids = live.succeed("lsblk -n -d -o PTUUID /dev/sda /dev/vda").split()
    assert len(set(ids)) == 2, ids


def test_apply_killed_in_the_middle_resumes_on_the_next_run(live):
    live.succeed(f"cat > /root/resume.yaml <<'EOF'\n{RESUME_ANSWERS}EOF")
    rc, out = live.execute("HYPERCORE_INSTALL_CRASH_AFTER=new-filesystem-ids "
                           "hypercore-install apply /root/resume.yaml --yes --journal /root/resume.json",
                           timeout=900)
    assert rc == 137, f"expected SIGKILL (137), got {rc}:\n{out}"
    assert "grow" not in live.succeed("python3 -c \"import json; "
                                      "print(json.load(open('/root/resume.json'))['done'])\"")
    out = live.succeed("hypercore-install apply /root/resume.yaml --yes --journal /root/resume.json",
                       timeout=900)
    assert "Resuming the interrupted install" in out
    assert "Hypercore is installed on /dev/vdc" in out
    live.succeed(f"mkdir -p /mnt/r && mount {partition(live, '/dev/vdc', 'hypercore-root')} /mnt/r")
    try:
        assert live.succeed("cat /mnt/r/etc/hostname").strip() == "node3"
    finally:
        live.succeed("umount /mnt/r")
    # The installed disk never shares the stick's identifiers.
    ids = live.succeed("lsblk -n -d -o PTUUID /dev/sda /dev/vdc").split()
    assert len(set(ids)) == 2, ids
    uuids = live.succeed("blkid -s UUID -o value " + " ".join(
        partition(live, d, "hypercore-root") for d in ("/dev/sda", "/dev/vdc"))).split()
    assert len(set(uuids)) == 2, uuids


def test_the_resumed_install_boots_under_legacy_bios(live, tmp_path):
    # The live system is done; the disk it installed (vdc) boots on its own
    # under SeaBIOS (the unattended e2e boots its install under OVMF).
    live.kill()
    target, osd = live.workdir / "disk2.qcow2", live.workdir / "disk3.qcow2"
    node = Machine(None, name="node3-bios", workdir=tmp_path / "node3", firmware="bios",
                   memory_mb=3072, disks=[target, osd])
    with node:
        node.wait_for_shell(900)
        assert node.succeed("hostname").strip() == "node3"
        node.fail("test -d /sys/firmware/efi")
        node.fail("test -e /etc/hypercore/live")
        node.wait_until_succeeds("findmnt -n -o FSTYPE /var/lib | grep -qx btrfs", timeout=300)
        # Booted from the installed disk's own root (its new partition GUID).
        root = node.succeed("findmnt -n -o SOURCE /").strip()
        assert root.startswith("/dev/vda"), root
