"""A fake machine for the first-boot steps: answers every command the way a
small Ceph cluster would, records what was run, fails on request. Files are
written for real under a temporary root; chown is only recorded."""

from __future__ import annotations

import json
import os
import subprocess

from hypercore.run import CommandError, run

from hypercore_installer.firstboot.host import Host

IP_ADDR = [
    {"ifindex": 1, "ifname": "lo", "link_type": "loopback", "address": "00:00:00:00:00:00",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    {"ifindex": 2, "ifname": "enp0s2", "link_type": "ether", "address": "52:54:00:12:34:56",
     "addr_info": [{"family": "inet", "local": "10.0.2.15", "prefixlen": 24, "scope": "global",
                    "dynamic": True},
                   {"family": "inet6", "local": "fe80::5054:ff:fe12:3456", "prefixlen": 64, "scope": "link"}]},
]
LSBLK = {"blockdevices": [
    {"path": "/dev/vda", "type": "disk", "serial": None, "wwn": None, "size": "8G", "model": None},
    {"path": "/dev/vdb", "type": "disk", "serial": "HCDISK0", "wwn": None, "size": "8G", "model": None},
]}
BY_ID = {"/dev/disk/by-id/virtio-HCDISK0": "/dev/vdb"}


# Keys the simulated cluster hands out (`ceph auth get ...`).
CLUSTER_KEYS = {"client.admin": "AQCj2YpRAAAAABAAyMQyIT8ddMlBW3n6TGSuCw==",
                "client.bootstrap-osd": "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==",
                "mon.": "AQDb2YpRAAAAABAAVkx1xpVuDD2UqVq5vDGWcg==",
                "mgr": "AQDq2YpRAAAAABAAcS2XzE5c9B2VV1D9xcxl2g=="}


def _mon(name: str, ip: str) -> dict:
    return {"name": name, "public_addrs": {"addrvec": [{"type": "v2", "addr": f"{ip}:3300"},
                                                      {"type": "v1", "addr": f"{ip}:6789"}]}}


class FakeCluster(Host):
    def __init__(self, root: str):
        super().__init__(out=open(os.devnull, "w"))
        self.root = root
        self.calls: list[list[str]] = []
        self.chowns: dict[str, str] = {}
        self.clock = 0.0
        self.fail: dict[str, int] = {}        # " ".join(argv) substring -> times to fail
        self.config: dict[tuple[str, str], str] = {}
        self.msgr2 = False
        self.mon_running = False
        self.mgr_polls_until_active = 2
        self.osds: dict[str, dict] = {}        # device -> {"id", "fsid", "cluster"}
        self.osd_running: set[int] = set()
        self.pools: dict[str, dict] = {}
        self.health_polls = [{"status": "HEALTH_WARN", "checks": {
            "PG_AVAILABILITY": {"summary": {"message": "Reduced data availability: 32 pgs inactive"}}}}]
        self.devices = dict(BY_ID)
        self.ip_polls_without_address = 0
        self.assimilate_leftover = ""
        self.auth_get_fails = False
        self.identities: list[tuple[str, list[str]]] = []   # (cephx name, ceph args) of every ceph call
        self.refused_names: set[str] = set()
        self.mons = ["node0"]                 # the other nodes' monitors
        self.namesake = False                 # another machine called node1 has OSDs in the cluster
        self.deleted: list[str] = []          # `ceph auth rm` entities
        self.clock_polls_unsynced = 0         # `chronyc tracking` answers before the clock follows a monitor
        self.unreachable: set[str] = set()    # hosts where no monitor accepts a connection
        self.connects: list[tuple[str, int]] = []

    # --- the Host interface ------------------------------------------------
    def can_connect(self, host, port, timeout=3.0):
        self.connects.append((host, port))
        return host not in self.unreachable

    def run(self, argv, *, input=None, ok=(0,), secret=False, env=None, timeout=None):
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        line = " ".join(argv)
        for pattern, times in list(self.fail.items()):
            if pattern in line and times > 0:
                self.fail[pattern] = times - 1
                raise CommandError(argv, 1, "", f"injected failure\n{pattern}: it broke")
        rc, out = self.answer(argv)
        if argv[-3:] == ["auth", "get", "client.bootstrap-osd"] and self.auth_get_fails:
            rc, out = 13, "[client.bootstrap-osd]\n\tkey = AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==\n"
        if rc not in ok:
            raise CommandError(argv, rc, "" if secret else out, "error")
        return subprocess.CompletedProcess(argv, rc, out, "")

    def chown(self, path, user):
        self.chowns[path] = user

    def owner(self, path):
        return self.chowns.get(path)

    def exists(self, path):
        return path in self.devices or os.path.lexists(path)

    def realpath(self, path):
        return self.devices.get(path, path)

    def hostname(self):
        return "node1"

    def monotonic(self):
        return self.clock

    def sleep(self, seconds):
        self.clock += seconds

    # --- the simulated cluster ----------------------------------------------
    def answer(self, argv: list[str]) -> tuple[int, str]:
        cmd = argv[0]
        if cmd == "ip":
            if self.ip_polls_without_address > 0:
                self.ip_polls_without_address -= 1
                return 0, json.dumps([IP_ADDR[0], {**IP_ADDR[1], "addr_info": []}])
            return 0, json.dumps(IP_ADDR)
        if cmd == "lsblk":
            return 0, json.dumps(LSBLK)
        if cmd == "ssh-keygen":              # the real one, on files under the temporary root
            done = run(argv, check=False)
            return done.returncode, done.stdout
        if cmd == "monmaptool":
            open(argv[-1], "w").write("monmap")
            return 0, ""
        if cmd == "ceph-mon":
            d = os.path.join(self.root, "var/lib/ceph/mon", "ceph-" + argv[argv.index("-i") + 1])
            os.makedirs(os.path.join(d, "store.db"), exist_ok=True)
            open(os.path.join(d, "keyring"), "w").write(open(argv[argv.index("--keyring") + 1]).read())
            return 0, ""
        if cmd == "systemctl":
            if argv[1] == "is-active":
                return (0 if int(argv[-1].split("@")[1]) in self.osd_running else 3), ""
            if argv[1] == "enable" and any(a.startswith("ceph-mon@") for a in argv):
                self.mon_running = True
            return 0, ""
        if cmd == "ceph-volume":
            return self.ceph_volume(argv[1:])
        if cmd == "rbd":
            self.pools[argv[-1]]["application_metadata"] = {"rbd": {}}
            return 0, ""
        if cmd == "agetty":
            return 0, ""
        if cmd == "chronyc" and argv[1:2] == ["burst"]:
            return 0, "200 OK\n"
        if cmd == "chronyc":
            if self.clock_polls_unsynced > 0:
                self.clock_polls_unsynced -= 1
                return 0, "7F7F0101,127.127.1.1,10,1700000000.0,-372.500000,0,0,0,0,0,0,0,0,Normal\n"
            return 0, "0A00020A,10.0.2.10,11,1700000000.0,0.000120,0,0,0,0,0,0,0,64.0,Normal\n"
        if cmd == "ceph":
            return self.ceph(argv[1:])
        raise AssertionError(f"unexpected command {argv}")

    def ceph_volume(self, args):
        if args[:2] == ["lvm", "list"]:
            listing = {str(o["id"]): [{"devices": [dev], "type": "block", "tags": {
                "ceph.osd_id": str(o["id"]), "ceph.osd_fsid": o["fsid"], "ceph.cluster_fsid": o["cluster"]}}]
                for dev, o in self.osds.items()}
            return 0, json.dumps(listing)
        if args[:2] == ["lvm", "create"]:
            dev = self.realpath(args[args.index("--data") + 1])
            osd_id = len(self.osds)
            conf = open(os.path.join(self.root, "etc/ceph/ceph.conf")).read()
            fsid = next(line.split("=")[1].strip() for line in conf.splitlines() if line.startswith("fsid"))
            self.osds[dev] = {"id": osd_id, "fsid": f"osd-fsid-{osd_id}", "cluster": fsid}
            self.osd_running.add(osd_id)
            return 0, ""
        if args[:2] == ["lvm", "activate"]:
            self.osd_running.add(int(args[2]))
            return 0, ""
        raise AssertionError(f"unexpected ceph-volume {args}")

    def ceph(self, args):
        if args[0] == "--admin-daemon":
            return (0, json.dumps({"state": "leader"})) if self.mon_running else (22, "")
        assert args[:2] == ["--connect-timeout", "30"], args
        args = args[2:]
        name = "client.admin"
        if args[:1] == ["--name"]:
            name, args = args[1], args[2:]
        self.identities.append((name, args))
        if name in self.refused_names:
            return 1, ""   # stderr: "error" -- like a monitor refusing an unknown or removed key
        if args[-2:] == ["--format", "json"]:
            args = args[:-2]
        if args == ["mon", "enable-msgr2"]:
            self.msgr2 = True
            return 0, ""
        if args[:2] == ["config", "assimilate-conf"]:
            who = None
            for line in open(args[args.index("-i") + 1]).read().splitlines():
                if line.startswith("["):
                    who = line.strip("[]")
                elif "=" in line:
                    option, value = (x.strip() for x in line.split("=", 1))
                    self.config[(who, option)] = value
            return 0, self.assimilate_leftover
        if args[:2] == ["config", "set"]:
            self.config[(args[2], args[3])] = args[4]
            return 0, ""
        if args[:2] == ["config", "rm"]:
            self.config.pop((args[2], args[3]), None)
            return 0, ""
        if args == ["mgr", "stat"]:
            self.mgr_polls_until_active -= 1
            return 0, json.dumps({"available": self.mgr_polls_until_active <= 0, "active_name": "node1"})
        if args == ["osd", "dump"]:
            return 0, json.dumps({"osds": [{"osd": o["id"], "up": int(o["id"] in self.osd_running), "in": 1}
                                           for o in self.osds.values()]})
        if args == ["osd", "pool", "ls", "detail"]:
            return 0, json.dumps(list(self.pools.values()))
        if args[:3] == ["osd", "pool", "create"]:
            size = int(self.config.get(("global", "osd_pool_default_size"), "3"))
            self.pools[args[3]] = {"pool_name": args[3], "size": size, "min_size": 1, "type": 1,
                                   "pg_num": int(args[4]), "application_metadata": {}}
            return 0, ""
        if args[:3] == ["osd", "pool", "set"]:
            self.pools[args[3]][args[4]] = int(args[5]) if args[5].isdigit() else args[5]
            return 0, ""
        if args == ["health"]:
            doc = self.health_polls.pop(0) if self.health_polls else {"status": "HEALTH_OK", "checks": {}}
            return 0, json.dumps(doc)
        if args == ["status"]:
            return 0, json.dumps({"health": {"status": "HEALTH_OK", "checks": {}},
                                  "monmap": {"num_mons": 1},
                                  "osdmap": {"num_osds": len(self.osds), "num_up_osds": len(self.osd_running),
                                             "num_in_osds": len(self.osds)}})
        if args == ["fsid"]:
            return 0, json.dumps({"fsid": "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"})
        if args[:2] == ["auth", "get"]:
            return 0, f"[{args[2]}]\n\tkey = {CLUSTER_KEYS.get(args[2], CLUSTER_KEYS['client.bootstrap-osd'])}\n"
        if args[:2] == ["auth", "get-or-create"]:
            return 0, f"[{args[2]}]\n\tkey = {CLUSTER_KEYS['mgr']}\n"
        if args[:2] == ["auth", "rm"]:
            self.deleted.append(args[2])
            return 0, ""
        if args == ["mon", "dump"]:
            return 0, json.dumps({"mons": [_mon(n, f"10.0.2.{10 + i}") for i, n in enumerate(self.mons)]
                                  + ([_mon("node1", "10.0.2.15")] if self.mon_running else [])})
        if args[:2] == ["mon", "getmap"]:
            open(args[args.index("-o") + 1], "w").write("monmap")
            return 0, ""
        if args == ["osd", "tree"]:
            here = [{"name": "node1", "type": "host", "children": [1]}] if self.osds or self.namesake else []
            return 0, json.dumps({"nodes": [{"name": "node0", "type": "host", "children": [0]}, *here]})
        if args[:4] == ["osd", "crush", "rule", "create-replicated"]:
            return 0, ""
        if args[:4] == ["osd", "crush", "rule", "dump"]:
            return 0, json.dumps({"rule_id": 1, "rule_name": args[4]})
        raise AssertionError(f"unexpected ceph {args}")

    def ran(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.calls if c[:len(prefix)] == list(prefix)]
