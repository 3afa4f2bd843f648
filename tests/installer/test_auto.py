"""`hypercore-install auto` end to end in --dry-run against recorded machines,
with the answers from each source (a URL served by a real HTTP server, a
credential); invalid answers stop it before any plan; the once-per-boot
marker; after_install; the copy of the output on a second terminal; and the
tty1 dialogue loop (pexpect)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import uuid

import pexpect
import pytest

from tests.installer.conftest import EXAMPLES, MACHINES, PYTHON, REPO, cli_env, run_cli
from hypercore_installer.auto import ANSWERS_COPY, MARKER, STATUS, BootState, read_status
from hypercore_installer.sources import Found
from test_sources import Server, closed_port

WORKSTATION = MACHINES / "workstation-nvme-usb.json"
SINGLE = EXAMPLES / "single-node-answers.yaml"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty kernel command line, no credential, a label no disk has."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "creds").mkdir()
    (tmp_path / "cmdline").write_text("BOOT_IMAGE=/vmlinuz console=tty0 console=ttyS0,115200 rw\n")
    return tmp_path


@pytest.fixture
def auto(env, cli):
    label = "HCT" + uuid.uuid4().hex[:8].upper()      # never found: the label source looks but finds nothing

    def call(*extra, machine=WORKSTATION, creds=True):
        args = ["auto", "--dry-run", "--machine", machine, "--cmdline", env / "cmdline",
                "--label", label, "--workdir", env / "work", *extra]
        if creds:
            args += ["--credentials-dir", env / "creds"]
        return cli(*args)
    call.label = label
    return call


@pytest.fixture
def server(monkeypatch):
    s = Server()
    yield s
    s.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _installed_nothing(out: str) -> None:
    assert "Install Hypercore on" not in out and "Steps:" not in out
    assert not re.search(r"^\[\d+/\d+\]", out, re.M) and "\n+ " not in out


# --- nothing found ----------------------------------------------------------------

def test_nothing_found_exits_0_and_points_at_the_dialogue(auto, env):
    code, out, err = auto()
    assert code == 0 and err == ""
    assert out == (
        f"No answer file found (looked at the kernel command line (hypercore.answers=URL), the systemd "
        f"credential hypercore.answers ({env / 'creds'}), a filesystem labelled {auto.label}); nothing is "
        "installed unattended.\n"
        "The interactive installer is running on tty1 (the screen); on the serial console start it with: "
        "hypercore-install\n")


# --- each source, dry run -------------------------------------------------------

def without_secrets(text: bytes) -> bytes:
    """The example, as it may be served over plain HTTP: no password hash (the SSH key logs in)."""
    return b"".join(line for line in text.splitlines(keepends=True) if b"password_hash" not in line)


def test_secrets_in_answers_over_plain_http_are_refused(auto, env, server):
    text = SINGLE.read_bytes()
    assert b"password_hash" in text
    server.routes["/nodes/node1.yaml"] = [(200, text)]
    url = server.url("/nodes/node1.yaml")
    (env / "cmdline").write_text(f"console=ttyS0 hypercore.answers={url} hypercore.answers_sha256={_sha(text)}\n")
    code, out, err = auto()
    assert code != 0 and "Traceback" not in err
    assert "root.password_hash: is a secret, and this answer file came over plain HTTP" in err, err
    assert "nothing was installed" in err and "[1/" not in out


def test_from_a_url_on_the_kernel_command_line(auto, env, server):
    text = without_secrets(SINGLE.read_bytes())
    server.routes["/nodes/node1.yaml"] = [(503, b""), (200, text)]
    url = server.url("/nodes/node1.yaml")
    (env / "cmdline").write_text(f"console=ttyS0 hypercore.answers={url} hypercore.answers_sha256={_sha(text)}\n")
    code, out, err = auto()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:4] == [
        f"Fetching the answer file {url} (from the kernel command line) ...",
        f"  fetching {url}: attempt 1 failed: HTTP 503 Service Unavailable; retrying in 1 s",
        f"Answer file: {url} (from the kernel command line (hypercore.answers=); sha256 {_sha(text)})",
        "Unattended install (the answer file is the consent; nothing is asked); after_install: reboot"]
    # The plan comes before any command.
    plan_at = out.index("Install Hypercore on /dev/nvme0n1")
    assert plan_at < out.index("Steps:") < out.index("[1/") < out.index("\n+ ")
    assert "Type the target disk's name" not in out
    assert "Dry run complete; nothing was changed." in out
    assert lines[-1] == "Dry run: would reboot now (after_install: reboot)."


def test_from_a_credential_in_credentials_directory(auto, env, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(env / "creds"))
    text = SINGLE.read_text().replace("version: 1\n", "version: 1\nafter_install: none\n")
    (env / "creds" / "hypercore.answers").write_text(text)
    code, out, err = auto(creds=False)
    assert code == 0, err
    assert (f"Answer file: {env / 'creds' / 'hypercore.answers'} (from the systemd credential "
            f"hypercore.answers; sha256 {_sha(text.encode())})") in out
    assert "Install Hypercore on /dev/nvme0n1" in out and "Dry run complete" in out
    assert out.splitlines()[-1] == "Dry run: would stay in the live system now (after_install: none)."


def test_after_install_poweroff_and_the_netboot_example(auto, env):
    (env / "creds" / "hypercore.answers").write_bytes(
        (EXAMPLES / "unattended-netboot-answers.yaml").read_bytes().replace(b"after_install: reboot",
                                                                           b"after_install: poweroff"))
    code, out, err = auto(machine=MACHINES / "rack-server-reinstall.json")
    assert code == 0, err
    assert out.splitlines()[-1] == "Dry run: would poweroff now (after_install: poweroff)."


# --- bad answers stop everything ------------------------------------------------

def test_invalid_answers_are_all_printed_and_nothing_is_planned(auto, env):
    bad = SINGLE.read_text().replace("hostname: node1", "hostname: node_1") \
        .replace("timezone: Europe/Lisbon", "timezone: Europe/Lisbon\nafter_install: later")
    (env / "creds" / "hypercore.answers").write_text(bad)
    code, out, err = auto()
    assert code == 1
    where = env / "creds" / "hypercore.answers"
    assert out.startswith(f"Answer file: {where} (from the systemd credential")
    _installed_nothing(out)
    assert err.startswith(f"hypercore-install: {where}: 2 problems found; nothing was installed\n")
    assert "  after_install: 'later' is not one of: reboot, poweroff, none\n" in err
    assert "  hostname: 'node_1' is not a valid host name (RFC 1123)\n" in err
    assert err.rstrip().endswith(
        "hint: correct the file passed as the credential hypercore.answers, then boot again; or run "
        "`hypercore-install auto` again on the serial console once it is fixed")


def test_yaml_syntax_error_from_a_url(auto, env, server):
    server.routes["/a.yaml"] = [(200, b"hostname: [node1\n")]
    (env / "cmdline").write_text(f"hypercore.answers={server.url('/a.yaml')}\n")
    code, out, err = auto()
    assert code == 1
    _installed_nothing(out)
    assert err.startswith(f"hypercore-install: {server.url('/a.yaml')}: YAML syntax error at line 2")


def test_a_plan_refused_on_this_machine_installs_nothing(auto, env):
    (env / "creds" / "hypercore.answers").write_bytes((EXAMPLES / "unattended-netboot-answers.yaml").read_bytes())
    code, out, err = auto(machine=MACHINES / "server-3disks.json")
    assert code == 1
    assert "\n+ " not in out and "selects 2 disks" in err


def test_url_404_and_connection_refused(auto, env, server):
    url = server.url("/gone.yaml")
    (env / "cmdline").write_text(f"hypercore.answers={url}\n")
    code, out, err = auto()
    assert code == 1
    assert out.splitlines()[-1] == f"  fetching {url}: attempt 1 failed: HTTP 404 Not Found; not retried"
    assert err.splitlines()[0] == f"hypercore-install: cannot fetch the answer file {url}: HTTP 404 Not Found"

    url = f"http://127.0.0.1:{closed_port()}/a.yaml"
    (env / "cmdline").write_text(f"hypercore.answers={url}\n")
    code, out, err = auto("--fetch-timeout", "1.5")
    assert code == 1
    assert [line for line in out.splitlines() if "attempt" in line] == [
        f"  fetching {url}: attempt 1 failed: connection refused; retrying in 1 s",
        f"  fetching {url}: attempt 2 failed: connection refused; giving up"]
    assert err.splitlines()[0] == (f"hypercore-install: cannot fetch the answer file {url}: connection refused "
                                   "(gave up after 2 attempts in 1 s)")
    assert "start the web server there" in err and "then boot again" in err


# --- once per live boot -----------------------------------------------------------

def test_a_second_unattended_install_in_the_same_boot_is_refused(auto, env):
    (env / "creds" / "hypercore.answers").write_bytes(SINGLE.read_bytes())
    (env / "work").mkdir()
    (env / "work" / MARKER).write_text(json.dumps({"state": "installed", "from": "http://srv/a.yaml",
                                                   "target": "/dev/nvme0n1"}))
    code, out, err = auto()
    assert code == 1 and out == ""
    assert err == ("hypercore-install: an unattended install already ran in this live boot: Hypercore was "
                   "installed on /dev/nvme0n1 (answers http://srv/a.yaml); it is not run twice\n"
                   "  hint: remove the USB stick and reboot into the installed system; to install again, "
                   "reboot the live medium\n")
    (env / "work" / MARKER).write_text(json.dumps({"state": "started", "from": "http://srv/a.yaml"}))
    code, out, err = auto()
    assert code == 1 and "already started in this live boot" in err
    assert f"hypercore-install apply {env / 'work' / ANSWERS_COPY} --yes" in err


def test_boot_state_files(tmp_path):
    found = Found(b"hostname: n1\n", "http://srv/a.yaml", "from the kernel command line", "fix it")
    dry = BootState(tmp_path / "dry", dry_run=True)
    dry.started(found, "hostname: n1\n")
    dry.status("x")
    assert not (tmp_path / "dry").exists()

    state = BootState(tmp_path / "work", dry_run=False)
    state.refuse_second_run()                          # nothing yet: allowed
    state.started(found, "hostname: n1\n")
    for name in (MARKER, ANSWERS_COPY):
        assert stat.S_IMODE(os.stat(tmp_path / "work" / name).st_mode) == 0o600
    assert (tmp_path / "work" / ANSWERS_COPY).read_text() == "hostname: n1\n"
    assert json.loads((tmp_path / "work" / MARKER).read_text())["state"] == "started"
    with pytest.raises(Exception, match="already started"):
        state.refuse_second_run()
    state.installed(found, "/dev/sda")
    assert json.loads((tmp_path / "work" / MARKER).read_text())["target"] == "/dev/sda"
    state.status("Hypercore was installed on /dev/sda.")
    assert read_status(tmp_path / "work") == "Hypercore was installed on /dev/sda.\n"
    assert stat.S_IMODE(os.stat(tmp_path / "work" / STATUS).st_mode) == 0o600


# --- the console copy, the CLI ------------------------------------------------------

def test_also_to_copies_output_and_errors(auto, env):
    screen = env / "screen"
    screen.touch()
    (env / "creds" / "hypercore.answers").write_text("hostname: node1\n")
    code, out, err = auto("--also-to", screen)
    assert code == 1
    copy = screen.read_text()
    assert out in copy and err in copy and "target: is required but missing" in copy
    code, out, err = auto("--also-to", env / "no" / "tty9")
    assert code == 1 and "cannot also write to" in err and "continuing without it" in err


def test_auto_as_a_separate_process_and_its_help(env):
    proc = run_cli("auto", "--dry-run", "--machine", WORKSTATION, "--cmdline", env / "cmdline",
                   "--credentials-dir", env / "creds", "--label", "HCTNONE", "--workdir", env / "work")
    assert proc.returncode == 0 and "The interactive installer is running on tty1" in proc.stdout
    helptext = run_cli("auto", "--help").stdout
    assert "--cmdline" in helptext and "--also-to" in helptext and "--dry-run" in helptext
    for hidden in ("--label", "--fetch-timeout", "--credentials-dir", "--workdir", "--reboot-delay"):
        assert hidden not in helptext
    assert "auto" in run_cli("--help").stdout


# --- the dialogue on tty1 ---------------------------------------------------------

def test_console_shows_the_status_and_always_returns_to_the_dialogue(tmp_path):
    work = tmp_path / "work"
    BootState(work, dry_run=False).status("No answer file was found, so nothing was installed unattended.")
    # Started with Ctrl-C ignored, as a shell's background job inherits it: the
    # console takes Ctrl-C back (before, such a console was deaf to it).
    child = pexpect.spawn(PYTHON, ["-m", "hypercore_installer.console", "--dry-run", "--machine", str(WORKSTATION),
                                   "--workdir", str(work)],
                          env=cli_env(), cwd=str(REPO), encoding="utf-8", timeout=30, dimensions=(50, 200),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        for _ in range(2):
            child.expect("Hypercore installer")
            child.expect("No answer file was found, so nothing was installed unattended.")
            child.expect(r"Hostname \[hypercore\]: ")
            child.sendintr()                                      # Ctrl-C: back to the start, no shell
            child.expect("interrupted")
            child.expect("Press Enter to start the installer again.")
            child.sendline("")
        child.expect("Hypercore installer")
        child.expect(r"Hostname \[hypercore\]: ")
        child.sendline("node1")
        child.expect(r"Target disk for the system")
        assert child.isalive()
    finally:
        child.terminate(force=True)
