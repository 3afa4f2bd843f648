"""Network boot for client machines: dnsmasq (DHCP or proxy-DHCP, TFTP), iPXE and
a small HTTP server, configured from the answer file's `netboot` section.

Modules: settings (the answers as a frozen dataclass), render (pure text of the
dnsmasq configuration, the iPXE menu, the env and .network files), check (every
problem before anything changes), probe (is there a DHCP server out there?),
http (the read-only file server), apply (write, test, swap, restart, roll back),
cli (the `hypercore-netboot` command).
"""

# Default locations on the appliance (all overridable).
TFTP_ROOT = "/var/lib/hypercore/tftpboot"
HTTP_ROOT = "/var/lib/hypercore/netboot"
IPXE_DIR = "/usr/lib/ipxe"
DNSMASQ_CONF = "/etc/dnsmasq.d/hypercore-netboot.conf"
NETWORK_FILE = "/etc/systemd/network/05-hypercore-netboot.network"
ENV_FILE = "/etc/hypercore/netboot.env"
HTTP_PORT = 8067
