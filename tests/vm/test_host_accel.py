"""KVM detection, host limits, the systemd unit command line and per-VM locks."""

from __future__ import annotations

import pytest

from hypercore import accel, host, supervisor
from hypercore.errors import UserError
from hypercore.locks import locked
from hypercore.run import CommandError
from hypercore.state import StateDir

INTEL = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae vmx sse2\n"
NESTED = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae sse2 hypervisor\n"


def test_cpu_flags():
    assert accel.cpu_has_virt(INTEL)
    assert accel.cpu_has_virt(INTEL.replace("vmx", "svm"))
    assert not accel.cpu_has_virt(NESTED)


@pytest.fixture
def fresh(monkeypatch):
    accel.detect.cache_clear()
    monkeypatch.delenv("HYPERCORE_ACCEL", raising=False)
    yield
    accel.detect.cache_clear()


def test_kvm_needs_device_flags_and_a_probe(fresh, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(accel, "_dev_kvm_usable", lambda: True)
    monkeypatch.setattr(accel, "Path", lambda p: tmp_path / "cpuinfo")
    (tmp_path / "cpuinfo").write_text(INTEL)
    monkeypatch.setattr(accel, "run", lambda argv, **kw: calls.append(argv))
    a = accel.detect("auto")
    assert a.name == "kvm" and a.cpu == "host" and calls == [accel.PROBE_ARGV]
    assert "-cpu" in calls[0] and "host" in calls[0] and "kvm" in calls[0]


def test_a_failing_probe_falls_back_to_tcg(fresh, monkeypatch, tmp_path):
    monkeypatch.setattr(accel, "_dev_kvm_usable", lambda: True)
    monkeypatch.setattr(accel, "Path", lambda p: tmp_path / "cpuinfo")
    (tmp_path / "cpuinfo").write_text(INTEL)

    def abort(argv, **kw):
        raise CommandError(argv, 134, "", "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n")
    monkeypatch.setattr(accel, "run", abort)
    a = accel.detect("auto")
    assert a.name == "tcg" and a.cpu == "max" and "failed to set MSR" in a.reason


def test_no_vmx_means_tcg_without_a_probe(fresh, monkeypatch, tmp_path):
    monkeypatch.setattr(accel, "_dev_kvm_usable", lambda: True)
    monkeypatch.setattr(accel, "Path", lambda p: tmp_path / "cpuinfo")
    (tmp_path / "cpuinfo").write_text(NESTED)
    monkeypatch.setattr(accel, "run", lambda *a, **k: pytest.fail("no probe without vmx/svm"))
    assert accel.detect("auto").name == "tcg"


def test_no_dev_kvm(fresh, monkeypatch):
    monkeypatch.setattr(accel, "_dev_kvm_usable", lambda: False)
    a = accel.detect("auto")
    assert a.name == "tcg" and "/dev/kvm" in a.reason


def test_forced_choices(fresh, monkeypatch):
    assert accel.detect("tcg").name == "tcg"
    assert accel.detect("kvm").name == "kvm"
    monkeypatch.setenv("HYPERCORE_ACCEL", "tcg")
    assert accel.detect("auto").name == "tcg"


def test_host_limits():
    h = host.HostLimits(memory_mb=4096, cpus=2)
    host.check_resources(4096, 2, h)
    for mem, cpus, text in ((4097, 1, "more than this host has (4096 MiB)"), (8, 1, "too little"),
                            (64, 3, "3 CPUs is more than this host has (2)"), (64, 0, "not a valid CPU count")):
        with pytest.raises(UserError) as e:
            host.check_resources(mem, cpus, h)
        assert text in e.value.message
    real = host.limits()
    assert real.memory_mb > 0 and real.cpus >= 1


def test_systemd_unit_command(tmp_path):
    st = StateDir(tmp_path)
    argv = supervisor.systemd_run_argv(st, "web", "tcg")
    assert argv[0] == "systemd-run" and "--unit=hypercore-vm-web" in argv and "--collect" in argv
    assert "--property=KillMode=mixed" in argv
    tail = argv[argv.index("--") + 1:]
    assert tail[1:] == ["-m", "hypercore", "--state-dir", str(tmp_path), "vm", "_run", "web", "--accel", "tcg"]


def test_systemd_only_as_root_under_systemd(monkeypatch):
    monkeypatch.setenv("HYPERCORE_SUPERVISOR", "process")
    assert host.systemd_manages_services() is False


def test_a_busy_vm_is_refused(tmp_path):
    st = StateDir(tmp_path)
    with locked(st, "vm-web"):
        with pytest.raises(UserError) as e:
            with locked(st, "vm-web"):
                pass
        assert e.value.message == "another hypercore command is working on vm-web"
        with locked(st, "vm-other"):
            pass


def test_network_preflight(tmp_path, monkeypatch):
    from hypercore import vms
    from hypercore.definition import Network
    (tmp_path / "br0" / "bridge").mkdir(parents=True)
    (tmp_path / "tap0").mkdir()
    conf = tmp_path / "bridge.conf"
    monkeypatch.setattr(vms, "BRIDGE_CONF", conf)
    with pytest.raises(UserError) as e:
        vms._check_network(Network(mode="bridge", bridge="nosuch"), tmp_path)
    assert e.value.message == "host bridge nosuch does not exist"
    with pytest.raises(UserError) as e:
        vms._check_network(Network(mode="bridge", bridge="br0"), tmp_path)
    assert "may not use bridge br0" in e.value.message and "allow br0" in e.value.hint
    conf.write_text("allow br0\n")
    vms._check_network(Network(mode="bridge", bridge="br0"), tmp_path)
    vms._check_network(Network(mode="tap", tap="tap0"), tmp_path)
    with pytest.raises(UserError):
        vms._check_network(Network(mode="tap", tap="tap9"), tmp_path)
    vms._check_network(Network(), tmp_path)
