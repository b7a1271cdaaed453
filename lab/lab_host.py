"""The lab host's layout, declared once: where each file the lab needs lives, the nft table, and
the Debian packages each role installs.

The roles get every value here as a variable (`role_vars`, part of the lab variables xenlab hands
the playbook), so a host xenlab provisions is laid out as declared here; the Python side (deploy,
list, topology, the facts of `check` and the converged probe, the shared folder) reads it from
here; the QEMU base image and the tests' root file system install `PACKAGES`. The roles' defaults
repeat the values for a playbook run without xenlab; tests/test_contract.py holds them to this.
"""

from __future__ import annotations

STATE_DIR = "/var/lib/xenlab"
DOMAINS_DIR = f"{STATE_DIR}/domains"  # one directory per deployed guest: its .xl, kernel, images
STATIC_DIR = f"{STATE_DIR}/static-ips"  # one symlink per claimed static address: IP -> domain name
SHARE_MOUNT = f"{STATE_DIR}/share"  # the folder shared with a QEMU lab, mounted on first use
CONVERGED_MARKER = f"{STATE_DIR}/converged"  # the fingerprint of the last playbook run that converged

CONFIG_DIR = "/etc/xenlab"
DHCP_HOSTS_DIR = f"{CONFIG_DIR}/dhcp-hosts"  # deploy's dnsmasq reservations, reread without a restart
XEN_CMDLINE_FILE = f"{CONFIG_DIR}/xen-cmdline"  # the command line the role gave Xen
NAT_FILE = f"{CONFIG_DIR}/nat.nft"
NAT_TABLE = "xenlab"  # nft's `table ip xenlab`
FORWARDING_SYSCTL = "/etc/sysctl.d/60-xenlab-forwarding.conf"

DNSMASQ_CONF = "/etc/dnsmasq.d/xenlab.conf"
DNSMASQ_LEASES = "/var/lib/misc/dnsmasq.leases"
DNSMASQ_LOG = "/var/log/xenlab-dnsmasq.log"
CONSOLE_LOGS = "/var/log/xen/console"  # xenconsoled's guest-NAME.log

# The Debian packages each role installs (roles/lab_packages), in the order the roles run.
PACKAGES = {
    "xen_hypervisor": ("xen-system-amd64",),
    "lab_dhcp": ("dnsmasq",),
    "lab_network": ("ifupdown", "bridge-utils"),
    "lab_forwarding": ("nftables",),
}


def packages() -> list[str]:
    """Every package the roles install, each once, in PACKAGES' order."""
    return list(dict.fromkeys(p for names in PACKAGES.values() for p in names))


def role_vars() -> dict[str, object]:
    """The layout as the roles' variables."""
    return {
        "lab_dhcp_conf_file": DNSMASQ_CONF,
        "lab_dhcp_leasefile": DNSMASQ_LEASES,
        "lab_dhcp_log": DNSMASQ_LOG,
        "lab_dhcp_hostsdir": DHCP_HOSTS_DIR,
        "lab_forwarding_nat_file": NAT_FILE,
        "lab_forwarding_nat_table": NAT_TABLE,
        "lab_forwarding_sysctl_file": FORWARDING_SYSCTL,
        "xen_hypervisor_cmdline_file": XEN_CMDLINE_FILE,
        "xen_hypervisor_console_log_dir": CONSOLE_LOGS,
        **{f"{role}_packages": list(names) for role, names in PACKAGES.items()},
    }
