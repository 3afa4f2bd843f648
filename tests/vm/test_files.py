"""Atomic writes are durable: the new file's data is fsynced before the
rename, and its directory after it (else a crash can leave the old name, or
none). os.fsync is recorded (pure logic: a crash is not simulated)."""

from __future__ import annotations

import os
import stat

import pytest

from hypercore import definition, files
from hypercore.definition import FileDisk, VMDefinition
from hypercore_installer.auto import BootState


@pytest.fixture
def fsyncs(monkeypatch):
    """Each os.fsync as ('dir' | 'file', the path the fd names, whether that path exists yet)."""
    calls, real = [], os.fsync

    def record(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)
    monkeypatch.setattr(os, "fsync", record)
    return calls


def _renamed_then_dir(calls, directory, name):
    """The file was fsynced under its temporary name, then the directory that holds name."""
    kinds = [k for k, _ in calls]
    assert kinds == ["file", "dir"], calls
    assert os.path.dirname(calls[0][1]) == str(directory) and os.path.basename(calls[0][1]) != name
    assert calls[1][1] == str(directory)


def test_write_atomic_fsyncs_the_file_then_its_directory(tmp_path, fsyncs):
    files.write_atomic(tmp_path / "x.json", "{}\n", 0o600)
    _renamed_then_dir(fsyncs, tmp_path, "x.json")
    assert (tmp_path / "x.json").read_text() == "{}\n"
    assert stat.S_IMODE(os.stat(tmp_path / "x.json").st_mode) == 0o600
    assert os.listdir(tmp_path) == ["x.json"]


def test_vm_yaml_is_written_through_the_durable_writer(tmp_path, fsyncs):
    d = VMDefinition(name="web", memory_mb=512, cpus=1,
                     disks=(FileDisk(path="/var/lib/hypercore/vms/web/disk0.qcow2", format="qcow2", owned=True),))
    definition.save(d, tmp_path / "vm.yaml")
    _renamed_then_dir(fsyncs, tmp_path, "vm.yaml")
    assert definition.load(tmp_path / "vm.yaml") == d
    assert os.listdir(tmp_path) == ["vm.yaml"]


def test_the_installers_boot_marker_is_durable_too(tmp_path, fsyncs):
    BootState(tmp_path, dry_run=False)._write(tmp_path / "marker.json", '{"state": "started"}')
    _renamed_then_dir(fsyncs, tmp_path, "marker.json")
    assert stat.S_IMODE(os.stat(tmp_path / "marker.json").st_mode) == 0o600


def test_replace_fsyncs_the_target_directory(tmp_path, fsyncs):
    (tmp_path / "a").write_text("1")
    files.replace(tmp_path / "a", tmp_path / "b")
    assert fsyncs == [("dir", str(tmp_path))] and (tmp_path / "b").read_text() == "1"
