#!/usr/bin/env bash
# Installs xenlab and everything it drives on Debian 12 or 13 (as root, or with sudo available).
# Idempotent: a second run installs nothing new. apt and pip keep their own caches between runs.
#   ./install.sh                 Debian packages, then the Python part
#   ./install.sh --python-only   only the Python part (.venv, /usr/local/bin/xenlab)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON_ONLY=0
[ "${1:-}" = "--python-only" ] && PYTHON_ONLY=1

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# What differs between releases is in lab/releases.py; it names this release's packages, or
# says which releases xenlab supports. Debian's python3 is enough to ask it.
VERSION_ID=""
[ -r /etc/os-release ] && VERSION_ID=$(. /etc/os-release && [ "${ID:-}" = debian ] && echo "${VERSION_ID:-}")
if ! command -v python3 >/dev/null; then
    echo "error: python3 is not installed" >&2
    echo "hint: apt-get install python3 python3-venv, then run ./install.sh again" >&2
    exit 2
fi
if ! RELEASE=$(python3 -m lab.releases "$VERSION_ID" 2>&1); then
    echo "error: this system is not a Debian release xenlab supports ($(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}"))" >&2
    echo "hint: $RELEASE" >&2
    exit 2
fi
read -r XEN_PARSER QEMU_SUITE <<EOF
$RELEASE
EOF

PACKAGES=(
    # block images are read back by the real tools in tests
    dosfstools mtools tar
    # Xen's own .xl parser (libxlutil), the oracle for xenlab's: this release's
    "$XEN_PARSER"
    # the lab VM: Vagrant (VirtualBox provider; vagrant-libvirt validates the libvirt block)
    # or QEMU run by xenlab
    vagrant vagrant-libvirt qemu-system-x86 qemu-utils
    # the QEMU base image and the namespace-hosted Debian the provisioning tests run Ansible on
    debootstrap fdisk e2fsprogs
    # lab networking parts exercised in tests: bridge, DHCP client and server
    iproute2 dnsmasq-base udhcpc busybox-static openssh-client socat iputils-ping
    # `xenlab check` (and the tests) reach guests over HTTP from the user's side
    curl
    procps util-linux python3-venv make
    # the test guests' initramfs (make guest, make unikernels); xenlab's own test kernel
    # (make testkernel: freestanding C and assembly, Debian's gcc and binutils)
    cpio gzip gcc binutils
    # `xenlab topology --svg/--png` lays the lab's network out with Graphviz
    graphviz
)

missing=()
[ "$PYTHON_ONLY" = 1 ] && PACKAGES=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# QEMU 10 where the release's own is older (Debian 12: 7.2, from bookworm-backports): the QEMU
# Debian 13 has, and the first whose TCG gives RDSEED (Unikraft refuses to boot without it).
if [ "$PYTHON_ONLY" = 0 ] && [ "$QEMU_SUITE" != - ]; then
    qemu=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
    if ! dpkg --compare-versions "${qemu:-0}" ge 1:10; then
        list=/etc/apt/sources.list.d/xenlab-$QEMU_SUITE.list
        [ -e "$list" ] || echo "deb http://deb.debian.org/debian $QEMU_SUITE main" | $SUDO tee "$list" >/dev/null
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            -t "$QEMU_SUITE" qemu-system-x86 qemu-utils
    fi
fi

# xenlab and its Python dependencies go into a virtual environment of their own (.venv here):
# Debian's python3 refuses pip (PEP 668), and a venv never touches the system's packages.
# PYTHON picks the interpreter that makes it (default: the first python3 on PATH).
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "error: $PYTHON cannot make a virtual environment (Debian keeps that in python3-venv)" >&2
    echo "hint: apt-get install python3-venv, or run ./install.sh without --python-only" >&2
    exit 2
fi
# A .venv left half-made (no pip in it) by an earlier failed run is made again.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# `xenlab` on PATH for everyone, pointing into the venv.
$SUDO ln -sf "$PWD/.venv/bin/xenlab" /usr/local/bin/xenlab
echo "xenlab installed: /usr/local/bin/xenlab -> $PWD/.venv/bin/xenlab"
found=$(command -v xenlab || true)
if [ -z "$found" ]; then
    echo "note: /usr/local/bin is not on your PATH: run /usr/local/bin/xenlab, or add it to PATH"
elif [ "$found" != /usr/local/bin/xenlab ]; then
    echo "note: \`xenlab\` on your PATH is $found, found before /usr/local/bin; run /usr/local/bin/xenlab or remove the other one"
fi
