"""`hypercore cluster ...`: growing the Ceph cluster past one node.

    token.py    the join token's format, its checks and the joining identity's caps (pure)
    grant.py    making, revoking and sweeping join identities on an existing node (`ceph auth`)
    status.py   one screen of nodes, mons, OSDs, pools and health (rendering is pure)
    cli.py      the `cluster` group of the hypercore command line

Join tokens are recorded in STATE/cluster/tokens.json (0600): entity and
expiry only, never the key.
"""
