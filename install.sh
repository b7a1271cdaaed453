#!/usr/bin/env bash
# Installs xenlab and everything it drives on Debian 12 (as root, or with sudo available).
# Idempotent: a second run installs nothing new. apt and pip keep their own caches between runs.
#   ./install.sh                 Debian packages, then the Python part
#   ./install.sh --python-only   only the Python part (.venv, /usr/local/bin/xenlab)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON_ONLY=0
[ "${1:-}" = "--python-only" ] && PYTHON_ONLY=1

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

PACKAGES=(
    # block images are read back by the real tools in tests
    dosfstools mtools tar
    # Xen's own .xl parser (libxlutil), the oracle for xenlab's
    libxenmisc4.17
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
    # the test guests' initramfs (make guest, make unikernels)
    cpio gzip
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

# xenlab and its Python dependencies go into a virtual environment of their own (.venv here):
# Debian's python3 refuses pip (PEP 668), and a venv never touches the system's packages.
# PYTHON picks the interpreter that makes it (default: the first python3 on PATH).
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# `xenlab` on PATH for everyone, pointing into the venv.
$SUDO ln -sf "$PWD/.venv/bin/xenlab" /usr/local/bin/xenlab
echo "xenlab installed: /usr/local/bin/xenlab -> $PWD/.venv/bin/xenlab"
found=$(command -v xenlab || true)
if [ "$found" != /usr/local/bin/xenlab ]; then
    echo "note: \`xenlab\` on your PATH is $found, found before /usr/local/bin; run /usr/local/bin/xenlab or remove the other one"
fi
