"""Every file the first-boot bootstrap reads or writes, under one root (/ on
a node; a temporary directory in the unit tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypercore.repo import access, config

CLUSTER = "ceph"


@dataclass(frozen=True)
class Paths:
    root: str = "/"

    def _p(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    # What the installer left.
    @property
    def answers(self) -> str:
        return self._p("/etc/hypercore/answers.yaml")

    @property
    def install_record(self) -> str:
        return self._p("/etc/hypercore/install.json")

    @property
    def live_marker(self) -> str:
        return self._p("/etc/hypercore/live")

    # Our state: a marker per finished step, the chosen facts, the last failure.
    @property
    def state_dir(self) -> str:
        return self._p("/var/lib/hypercore/firstboot")

    @property
    def join_request_key(self) -> str:
        """This node's own key pair for its join request (ceph.join.request); removed once joined."""
        return os.path.join(self.state_dir, "join-request.key")

    @property
    def approved_token(self) -> str:
        """The join token the cluster sealed to that key when an operator approved (0600)."""
        return os.path.join(self.state_dir, "join-token")

    @property
    def lock(self) -> str:
        """Held while a bootstrap runs: the unit and a run by hand never overlap."""
        return self._p("/run/lock/hypercore-firstboot.lock")

    # Time (steps_time).
    @property
    def chrony_server_conf(self) -> str:
        return self._p("/etc/chrony/conf.d/hypercore.conf")

    @property
    def chrony_sources(self) -> str:
        return self._p("/etc/chrony/sources.d/hypercore-monitors.sources")

    # Ceph.
    @property
    def ceph_conf(self) -> str:
        return self._p(f"/etc/ceph/{CLUSTER}.conf")

    @property
    def admin_keyring(self) -> str:
        return self._p(f"/etc/ceph/{CLUSTER}.client.admin.keyring")

    def client_keyring(self, entity: str) -> str:
        """Where the ceph CLI looks for ENTITY's key by default."""
        return self._p(f"/etc/ceph/{CLUSTER}.{entity}.keyring")

    @property
    def bootstrap_osd_keyring(self) -> str:
        return self._p(f"/var/lib/ceph/bootstrap-osd/{CLUSTER}.keyring")

    @property
    def ceph_tmp(self) -> str:
        """Owned by ceph: what ceph-mon --mkfs reads after dropping to user ceph."""
        return self._p("/var/lib/ceph/tmp")

    @property
    def mon_seed_keyring(self) -> str:
        """Every key the monitor starts with; removed once the store exists."""
        return os.path.join(self.ceph_tmp, "hypercore-mon-seed.keyring")

    @property
    def monmap(self) -> str:
        return os.path.join(self.ceph_tmp, "hypercore-monmap")

    def mon_dir(self, name: str) -> str:
        return self._p(f"/var/lib/ceph/mon/{CLUSTER}-{name}")

    def mgr_dir(self, name: str) -> str:
        return self._p(f"/var/lib/ceph/mgr/{CLUSTER}-{name}")

    def mon_asok(self, name: str) -> str:
        return self._p(f"/run/ceph/{CLUSTER}-mon.{name}.asok")

    # The golden-image repository's replication access (hypercore/repo/access.py).
    @property
    def repo_config(self) -> str:
        return self._p(config.DEFAULT)

    @property
    def repo_key(self) -> str:
        return self._p(access.KEY)

    @property
    def repo_authorized_keys(self) -> str:
        return self._p(access.AUTHORIZED_KEYS)

    @property
    def repo_known_hosts(self) -> str:
        return self._p(access.KNOWN_HOSTS)

    @property
    def sshd_dropin(self) -> str:
        return self._p(access.SSHD_DROPIN)

    # The ready report.
    @property
    def issue(self) -> str:
        """agetty shows /etc/issue.d/*.issue above the login prompt."""
        return self._p("/etc/issue.d/hypercore.issue")

    @property
    def console(self) -> str:
        return self._p("/dev/console")
