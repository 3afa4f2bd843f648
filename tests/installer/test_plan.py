"""Plans and refusals for the recorded machines (pure: no disk is touched)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tests.installer.conftest import BASE_ANSWERS, EXAMPLES, machine, write_answers, MACHINES
from hypercore_installer import layout
from hypercore_installer.model import Plan, PlanRefused
from hypercore_installer.plan import build_plan
from hypercore_installer.sizes import GiB


def answers(**changes) -> dict:
    doc = yaml.safe_load(BASE_ANSWERS)
    for key, value in changes.items():
        doc[key] = value
    return doc


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}-answers.yaml").read_text())


def refusals(doc, m, source=None) -> list[str]:
    with pytest.raises(PlanRefused) as e:
        build_plan(doc, m, source)
    return [str(r) for r in e.value.refusals]


def ids(plan):
    return [s.id for s in plan.steps]


NEW_INSTALL = ["copy-image", "new-partition-ids", "new-filesystem-ids", "fix-boot-references", "grow-root"]
CONFIGURE = ["configure-identity", "configure-network", "configure-root-login", "remove-live-bits",
             "save-answers", "make-data-filesystem", "make-subvolumes", "move-var-lib"]


def test_single_node_example_on_the_workstation():
    plan = build_plan(example("single-node"), machine("workstation-nvme-usb"))
    assert plan.target["path"] == "/dev/nvme0n1"
    assert plan.source["path"] == "/dev/sdc" and plan.source["why"] == "the boot medium"
    assert ids(plan) == [*NEW_INSTALL, "add-data-partition", *CONFIGURE, "wipe-osd-sdb", "finish"]
    destructive = [(s.id, s.writes) for s in plan.steps if s.destructive]
    assert destructive == [("copy-image", ("/dev/nvme0n1",)), ("wipe-osd-sdb", ("/dev/sdb",))]
    grow = plan.steps[4].params
    assert grow["sectors"] * 512 == 32 * GiB   # root_size: 32G
    data = plan.steps[5].params
    assert data["path"] == "/dev/nvme0n1p4" and data["number"] == 4
    assert data["start"] % layout.ALIGN == 0 and data["start"] >= 1052672 + grow["sectors"]
    assert (data["start"] + data["sectors"]) * 512 <= 500107862016 - 33 * 512
    assert [d["path"] for d in plan.disks["ceph osd"]] == ["/dev/sdb", "/dev/sda"]
    assert "DESTRUCTIVE  copy the Hypercore image (2.3 GiB) from /dev/sdc to /dev/nvme0n1" in plan.render()


def test_join_example_on_twin_disks_uses_the_data_disk():
    plan = build_plan(example("join-cluster"), machine("twin-disks"))
    assert plan.target["serial"] == "S6PTNX0T100001"
    assert [d["path"] for d in plan.disks["data"]] == ["/dev/sdb"]    # by its /dev/disk/by-id link
    assert [d["serial"] for d in plan.disks["ceph osd"]] == ["ZL2ABC17", "ZL2ABC21"]
    assert "add-data-partition" not in ids(plan)
    mkfs = next(s for s in plan.steps if s.id == "make-data-filesystem")
    assert mkfs.destructive and mkfs.writes == ("/dev/sdb",)
    grow = next(s for s in plan.steps if s.id == "grow-root")
    assert (1052672 + grow.params["sectors"]) * 512 > 1000204886016 - 2 * 1024 * 1024  # the whole disk


def test_unattended_example_on_the_reinstalled_rack_server_wipes_first():
    plan = build_plan(example("unattended-netboot"), machine("rack-server-reinstall"))
    assert ids(plan)[0] == "wipe-target-sda" and plan.steps[0].destructive
    assert "a btrfs filesystem labelled 'hypercore-data' on sda4" in plan.steps[0].title
    regions = plan.steps[0].params["regions"]
    assert [r["offset"] for r in regions] == [2048 * 512, 1050624 * 512, 1052672 * 512, 51384320 * 512]
    assert ids(plan)[-2:] == ["wipe-osd-sdb", "finish"]


def test_reinstall_without_wipe_lists_what_each_disk_holds():
    doc = example("unattended-netboot")
    doc["wipe"] = False
    r = refusals(doc, machine("rack-server-reinstall"))
    assert len(r) == 2
    assert r[0].startswith("target (/dev/sda): holds data: a GPT partition table on sda, a vfat filesystem")
    assert "set `wipe: true`" in r[0]
    assert r[1].startswith("ceph.osd_disks[0] (/dev/sdb): holds data: an LVM physical volume on sdb")


def test_busy_disks_are_refused_even_with_wipe():
    doc = answers(target={"path": "/dev/sda"}, wipe=True,
                  ceph={"mode": "new", "osd_disks": ["/dev/sdb", "/dev/sdc"]})
    r = refusals(doc, machine("server-3disks"))
    assert len(r) == 3
    assert "ceph.osd_disks[0] (/dev/sdb): is in use: mounted (dm-0 at /srv/backup)" in r[0]
    assert "held by another device (sdb1 by dm-0 (oldvg-backup, lvm))" in r[1]
    assert "vgchange -an" in r[1]
    assert "ceph.osd_disks[1] (/dev/sdc): is in use: mounted (sdc1 at /srv/old)" in r[2]
    assert "umount /srv/old" in r[2]
    assert "too small" not in " ".join(r)


def test_every_refusal_is_collected_at_once():
    doc = answers(target={"path": "/dev/sdd"}, data={"disks": ["/dev/sdz"]},
                  ceph={"mode": "new", "osd_disks": ["/dev/sdb", {"match": {"model": "ST4000NM*"}}, "/dev/sdd1"]})
    r = refusals(doc, machine("server-3disks"))
    wheres = [x.split(":")[0] for x in r]
    # In the answer file's order; the boot medium gets one refusal, not a list.
    assert wheres == ["target (/dev/sdd)", "data.disks[0] (/dev/sdz)", "ceph.osd_disks[0] (/dev/sdb)",
                      "ceph.osd_disks[0] (/dev/sdb)", "ceph.osd_disks[0] (/dev/sdb)", "ceph.osd_disks[1]",
                      "ceph.osd_disks[2] (/dev/sdd1)"]
    text = "\n".join(r)
    assert "is the boot medium: the running system's root filesystem (/dev/sdd3) is on it" in text
    assert "there is no disk /dev/sdz on this machine" in text
    assert "/dev/sdd1 is a partition of /dev/sdd, not a whole disk" in text


def test_an_ambiguous_model_match_lists_the_disks_and_takes_none():
    doc = answers(target={"match": {"model": "Samsung SSD 870 EVO*"}},
                  ceph={"mode": "new", "osd_disks": ["/dev/sdc"]})
    [r] = refusals(doc, machine("twin-disks"))
    assert r.startswith("target: the match (model=Samsung SSD 870 EVO*) selects 2 disks: "
                        "/dev/sda (Samsung SSD 870 EVO 1TB, 931.5 GiB, serial S6PTNX0T100001); "
                        "/dev/sdb (Samsung SSD 870 EVO 1TB, 931.5 GiB, serial S6PTNX0T200002)")
    assert "never picks the first" in r
    doc["target"]["match"]["serial"] = "S6PTNX0T2*"
    assert build_plan(doc, machine("twin-disks")).target["path"] == "/dev/sdb"


def test_matches_that_select_nothing_or_only_the_boot_medium():
    m = machine("twin-disks")
    [r] = refusals(answers(target={"match": {"size": {"min": "3T"}}}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m)
    assert "selects no disk" in r and "disks here: /dev/sda" in r
    [r] = refusals(answers(target={"match": {"transport": "usb"}}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m)
    assert "selects only the boot medium /dev/sde, which is never installed to" in r


def test_match_by_size_range_wwn_and_rotational():
    m = machine("twin-disks")
    doc = answers(target={"match": {"wwn": "0x5002538F42200002"}},
                  ceph={"mode": "new", "osd_disks": [{"match": {"rotational": True, "size": {"min": "1.5T", "max": "2.1TB"}, "serial": "*21"}}]})
    plan = build_plan(doc, m)
    assert plan.target["path"] == "/dev/sdb" and plan.disks["ceph osd"][0]["path"] == "/dev/sdd"


def test_the_same_disk_twice_is_refused():
    doc = answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": [{"match": {"serial": "S6PTNX0T100001"}}]})
    [r] = refusals(doc, machine("twin-disks"))
    assert r.startswith("ceph.osd_disks[0] (/dev/sda): is already used as target")


def test_small_disks_are_refused():
    m = machine("twin-disks")
    m["disks"][0]["size"] = 6 * GiB
    m["disks"][2]["size"] = 4 * GiB
    doc = answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]})
    r = refusals(doc, m)
    assert r[0].startswith("target (/dev/sda): is too small: 6.0 GiB, the system plus a 2 GiB data partition "
                           "needs at least 8.0 GiB")
    assert r[1].startswith("ceph.osd_disks[0] (/dev/sdc): is too small: 4.0 GiB, a Ceph OSD needs at least 5.0 GiB")


def test_root_shrinks_on_a_small_target_to_leave_room_for_data():
    m = machine("twin-disks")
    m["disks"][0]["size"] = 10 * GiB
    plan = build_plan(answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m)
    grow = next(s for s in plan.steps if s.id == "grow-root").params
    data = next(s for s in plan.steps if s.id == "add-data-partition").params
    assert grow["sectors"] * 512 < 16 * GiB
    assert data["sectors"] * 512 >= 2 * GiB - 2 * 1024 * 1024
    assert (data["start"] + data["sectors"]) * 512 <= 10 * GiB - 33 * 512


def test_4k_sector_target_is_refused():
    m = machine("twin-disks")
    m["disks"][0]["logical_sector_size"] = 4096
    [r] = refusals(answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m)
    assert "has 4096-byte sectors" in r


def test_unreadable_and_read_only_disks_are_refused():
    m = machine("twin-disks")
    m["disks"][0]["probe_error"] = "wipefs: error: /dev/sda: Input/output error"
    m["disks"][2]["read_only"] = True
    r = refusals(answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m)
    assert "could not be read: wipefs: error: /dev/sda: Input/output error" in r[0]
    assert "is read-only" in r[1]


def test_install_source():
    m = machine("twin-disks")
    doc = answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]})
    for d in m["disks"]:
        d["boot_medium"] = False
    [r] = refusals(doc, m)
    assert r.startswith("source: this system did not boot from a disk") and "--source-disk" in r
    [r] = refusals(doc, m, "/dev/sdd")
    assert r.startswith("source (/dev/sdd): /dev/sdd is not a Hypercore image: it has no GPT")
    plan = build_plan(doc, m, "/dev/sde")
    assert plan.source["why"] == "--source-disk" and plan.source["root"]["number"] == 3
    r = refusals(answers(target={"path": "/dev/sde"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m, "/dev/sde")
    assert any("is the installation source" in x for x in r)


def test_planning_is_pure_and_the_plan_round_trips():
    m, doc = machine("workstation-nvme-usb"), example("single-node")
    before = (copy.deepcopy(m), copy.deepcopy(doc))
    first, second = build_plan(doc, m), build_plan(doc, m)
    assert first == second and (m, doc) == before
    assert Plan.from_dict(json.loads(json.dumps(first.to_dict()))) == first


def test_cli_plan_for_a_recorded_machine(cli, tmp_path):
    code, out, err = cli("plan", EXAMPLES / "single-node-answers.yaml", "--machine", MACHINES / "workstation-nvme-usb.json")
    assert code == 0 and err == ""
    assert out.startswith("Install Hypercore on /dev/nvme0n1 (Samsung SSD 980 500GB, 465.8 GiB, serial S64DNX0R123456A)")
    assert " 1. DESTRUCTIVE  copy the Hypercore image" in out
    code, out, _ = cli("plan", EXAMPLES / "single-node-answers.yaml", "--machine",
                       MACHINES / "workstation-nvme-usb.json", "--json")
    assert code == 0 and json.loads(out)["steps"][0]["id"] == "copy-image"
    bad = write_answers(tmp_path, BASE_ANSWERS.replace("/dev/nvme0n1", "/dev/sdc"))
    code, out, err = cli("plan", bad, "--machine", MACHINES / "workstation-nvme-usb.json")
    assert code == 1 and out == ""
    assert "hypercore-install: the install is refused (1 problem); nothing was changed" in err, err
    assert "target (/dev/sdc): is the boot medium" in err and "hint:" in err and "Traceback" not in err


def test_cli_plan_with_a_bad_machine_file(cli, tmp_path):
    (tmp_path / "m.json").write_text("{\"nics\": []}")
    code, _, err = cli("plan", EXAMPLES / "single-node-answers.yaml", "--machine", tmp_path / "m.json")
    assert code == 1 and "is not a machine description" in err and "hypercore-install probe" in err


def test_active_swap_is_refused_with_swapoff():
    m = machine("twin-disks")
    m["disks"][2]["mounts"] = [{"device": "sdc2", "mountpoint": "[SWAP]"}]
    [r] = refusals(answers(target={"path": "/dev/sda"}, ceph={"mode": "new", "osd_disks": ["/dev/sdc"]}), m)
    assert "is in use: active swap on sdc2" in r and "swapoff /dev/sdc2" in r


def test_a_live_labelled_partition_is_relabelled_on_the_target():
    m = machine("workstation-nvme-usb")
    m["disks"][3]["partitions"][0]["partlabel"] = "hypercore-live"
    plan = build_plan(example("single-node"), m)
    assert next(s for s in plan.steps if s.id == "new-partition-ids").params["relabel"] == [1]


def test_an_answers_partition_after_the_image_on_the_stick_is_not_copied():
    # The operator added a FAT partition labelled HYPERCORE (the answer file)
    # after the image on the USB stick: the stick is still a valid source, the
    # copy stops at the image's end, and the copied table drops that entry.
    m = machine("workstation-nvme-usb")
    stick = next(d for d in m["disks"] if d.get("boot_medium"))
    root = stick["partitions"][-1]
    end = root["start"] + root["sectors"]
    stick["partitions"].append({
        "path": "/dev/sdc4", "name": "sdc4", "number": 4, "start": end, "sectors": 65536,
        "size": 65536 * 512, "type": "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "uuid": None,
        "partlabel": None, "fstype": "vfat", "fs_uuid": "ABCD-1234", "fs_label": "HYPERCORE",
        "mountpoints": []})
    plan = build_plan(example("single-node"), m)
    copy_step = next(s for s in plan.steps if s.id == "copy-image")
    assert copy_step.params["bytes"] == end * 512
    assert next(s for s in plan.steps if s.id == "new-partition-ids").params["delete"] == [4]
    assert [p["number"] for p in plan.source["partitions"]] == [1, 2, 3]
    # Without the label, a partition after the root still makes the stick unusable.
    stick["partitions"][-1]["fs_label"] = "DATA"
    [r] = refusals(example("single-node"), m)
    assert "its root partition is not the last partition" in r
