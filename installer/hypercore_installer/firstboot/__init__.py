"""The first-boot Ceph bootstrap of an installed Hypercore node
(`hypercore-install firstboot`, run by hypercore-firstboot.service).

It reads /etc/hypercore/answers.yaml and /etc/hypercore/install.json (what
the installer wrote) and, for `ceph.mode: new`, makes a one-node cluster:
ceph.conf, keyrings, monmap, monitor, manager, one BlueStore OSD per chosen
disk, the RBD pool `vm-pool`, then waits for HEALTH_OK and writes a ready
report (console and /etc/issue.d). For `ceph.mode: join` it adds this node's
disks as OSDs to an existing cluster.

Modules: `render` (pure text: ceph.conf, keyrings, settings, report),
`network` and `disks` (pure choices from command output), `cluster` (the
ceph CLI and parsers of its JSON), `steps_new`, `steps_osd`, `steps_join`
(one function per step, each checks its own postcondition), `journal`
(a marker per finished step under /var/lib/hypercore/firstboot/), `engine`
(runs the steps once each, resumes, fails with one clear line), `report`.
"""
