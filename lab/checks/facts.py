"""What a healthy lab host is, declared once.

Each fact is a POSIX shell fragment that prints one line per way the host differs from it, and
nothing when it holds. A fact a role also asserts as its last step lives in that role's files/,
and is read from there. `xenlab up` compiles the facts the playbook makes true into one script (one
round trip: is the lab converged?); `xenlab check` runs every fact as its own testinfra test; the
tests call them by name. The fragments read the lab's settings from shell variables that the
compiled script sets from its positional arguments: values are never spliced into the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab import lab_host, resources
from lab.config import LabConfig
from lab.remote import ShellScript

# What today's unikernels need from the CPU, as Linux's /proc/cpuinfo spells it, and who needs it.
_CRYPTO = "mirage-crypto and nocrypto (a MirageOS 3 web server traps at boot without AES-NI)"
_HWRNG = "Unikraft, whose random number generator refuses to boot without it"
UNIKERNEL_CPU_NEEDS = {
    **{f: "x86-64-v2, which unikernels are compiled for" for f in ("ssse3", "sse4_1", "sse4_2", "popcnt")},
    "aes": _CRYPTO, "pclmulqdq": _CRYPTO, "rdrand": _HWRNG, "rdseed": _HWRNG,
}
UNIKERNEL_CPU_FLAGS = tuple(UNIKERNEL_CPU_NEEDS)
_CPU_LACKS = "".join(
    f'case $flags in *" {f} "*) ;; *) echo "the lab CPU lacks {f}: needed by {who}" ;; esac\n'
    for f, who in UNIKERNEL_CPU_NEEDS.items())


def xen_hvm(xl: str = "xl") -> str:
    """Shell that prints `hvm` when Xen offers HVM containers (what PVH guests, MirageOS 4,
    need), `none` when it does not, and nothing when `xl info` cannot be read. Under Xen, dom0's
    /proc/cpuinfo hides VT-x/AMD-V: only Xen's own virt_caps says. xl: how to run xl there."""
    return f"""{xl} info 2>/dev/null | awk '/^virt_caps/ {{ print (/[: ]hvm( |$)/ ? "hvm" : "none") }}'"""


# The variables every fragment may read, in the order the compiled script receives them: the
# lab's settings, then where the roles put things (lab/lab_host.py).
PARAMETERS = ("bridge", "address", "prefix", "dhcp_range", "subnet", "nat", "dom0_mb", "paging",
              "dnsmasq_conf", "forwarding_sysctl", "nat_table", "xen_cmdline_file")


@dataclass(frozen=True)
class Fact:
    id: str
    script: str
    cause: str  # what usually makes it fail, for `xenlab check`
    xen: bool = False  # only true on a host running as Xen dom0
    provisioned: bool = True  # the playbook makes it true (so its absence is drift to repair)


_NON_VIF_PORTS = """for port in /sys/class/net/"$bridge"/brif/*; do
  [ -e "$port" ] || continue
  nic=${port##*/}
  case $nic in vif*) continue ;; esac"""

FACTS = (
    Fact("xen_dom0", resources.role_file("xen_hypervisor", "xen_dom0.sh").read_text(),
         "the last reboot did not boot the Xen GRUB entry (`xenlab up --provision` reboots into it)",
         xen=True),
    Fact("unikernel_cpu", f"""
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
{_CPU_LACKS}[ "$({xen_hvm()})" = hvm ] ||
  echo "Xen offers no hvm in virt_caps: PVH guests (MirageOS 4) cannot start"
""", "QEMU: a CPU model without them (QEMU 7.2's TCG has no RDSEED), or no +svm; VirtualBox: "
         "nested hardware virtualisation off",
         xen=True, provisioned=False),
    Fact("bridge", f"""
ip -o -4 addr show dev "$bridge" 2>/dev/null | grep -q " inet $address/$prefix " ||
  echo "$bridge does not hold $address/$prefix"
ports=0
{_NON_VIF_PORTS}
  ports=$((ports + 1))
done
[ "$ports" -gt 0 ] || echo "$bridge has no port on the host-only network"
for knob in stp_state forward_delay ageing_time; do
  value=$(cat /sys/class/net/"$bridge"/bridge/$knob 2>/dev/null)
  [ "$value" = 0 ] || echo "$bridge $knob is ${{value:-missing}}, not 0"
done
""", "the bridge did not come up (`ifup $bridge` on the lab host), or the host-only NIC is not in it"),
    Fact("promiscuous", f"""
{_NON_VIF_PORTS}
  # The NIC's own flag from ip: sysfs shows IFF_PROMISC on every bridge port (the bridge asks).
  ip -o link show dev "$nic" | grep -q '[<,]PROMISC[,>]' || echo "$nic is not promiscuous"
done
""", "ARP works and nothing else does: the host-only NIC must pass frames for the guests' MACs"),
    Fact("dnsmasq", """
sockets=$(ss -H -ulpn 'sport = :67' 2>/dev/null | grep dnsmasq)
[ -n "$sockets" ] || { echo "dnsmasq is not serving DHCP"; exit 0; }
echo "$sockets" | grep -v "%$bridge:67" | grep -q . && echo "dnsmasq listens beyond $bridge"
ss -H -tlpn 2>/dev/null | grep -q dnsmasq && echo "dnsmasq serves DNS too"
grep -q "^dhcp-range=$dhcp_range," "$dnsmasq_conf" 2>/dev/null ||
  echo "$dnsmasq_conf does not hand out $dhcp_range"
[ "$(stat -c %a "$dnsmasq_conf" 2>/dev/null)" = 644 ] || echo "$dnsmasq_conf is not mode 0644"
""", "guests get no address: `systemctl status dnsmasq` on the lab host"),
    Fact("forwarding", """
[ "$(sysctl -n net.ipv4.ip_forward 2>/dev/null)" = 1 ] || echo "IP forwarding is off"
grep -qs 'net.ipv4.ip_forward = 1' "$forwarding_sysctl" ||
  echo "IP forwarding is not kept across reboots"
""", "guests cannot get out of the lab network"),
    Fact("nat", """
[ "$nat" = 1 ] || exit 0
nft list table ip "$nat_table" >/dev/null 2>&1 || { echo "the NAT table is not loaded"; exit 0; }
nft list table ip "$nat_table" | grep -qE "ip saddr $subnet oifname \\"[^\\"]+\\" masquerade" ||
  echo "the NAT rule for $subnet is missing"
""", "guests cannot get out of the lab network (the lab_forwarding role loads it)"),
)

BY_ID = {f.id: f for f in FACTS}


def values(config: LabConfig) -> tuple[str, ...]:
    """What the fragments read, in PARAMETERS' order."""
    return (config.bridge, config.lab_ip, str(config.prefixlen),
            f"{config.dhcp_start},{config.dhcp_end}", str(config.network()),
            "1" if config.nat else "0", str(config.dom0_memory), config.paging,
            lab_host.DNSMASQ_CONF, lab_host.FORWARDING_SYSCTL, lab_host.NAT_TABLE,
            lab_host.XEN_CMDLINE_FILE)


def script(facts: tuple[Fact, ...] | list[Fact], args: tuple[str, ...], prologue: str = "",
           name: str = "xenlab-facts", marked: bool = False) -> ShellScript:
    """One script that checks every fact: each in a subshell (its `exit` ends only itself);
    marked: each fact's lines after a line `@@fact:ID` (domain.sections splits them)."""
    head = ShellScript.naming(PARAMETERS)
    body = "\n".join(("echo @@fact:" + f.id + "\n" if marked else "") + f"( {f.script.strip()}\n)"
                     for f in facts)
    extra = len(PARAMETERS)
    return ShellScript(f"{head}\nshift {extra}\n{prologue}\n{body}\nexit 0\n", args, name)
