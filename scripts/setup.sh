#!/usr/bin/env bash
# Installs what ambient-lab needs on a fresh Debian/Ubuntu machine: system tools
# (iproute2, iptables, ipset, tcpdump, curl, tshark..., sudo where it is missing), the npm dependencies,
# and the build; then links `lab` onto PATH. Safe to run again.
# Options: --with-vm also fetches what the kernel-Geneve VM test needs (qemu).
#          --with-vagrant also installs Debian's vagrant (CI's `vagrant validate` of the Vagrantfile).
#          --check-first builds only when a source is newer than dist/ and links `lab` only when
#          the link is not already right, so a run on a set-up machine changes nothing
#          (lab/provision.sh uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_VM=0; WITH_VAGRANT=0; CHECK_FIRST=0
for a in "$@"; do case "$a" in --with-vm) WITH_VM=1 ;; --with-vagrant) WITH_VAGRANT=1 ;; --check-first) CHECK_FIRST=1 ;; *) echo "setup.sh: unknown option $a" >&2; exit 2 ;; esac; done
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (the lab creates network namespaces)" >&2; exit 2; }

pkgs=(iproute2 iptables ipset tcpdump curl util-linux procps kmod tshark openssl iputils-ping)
# sudo: the README's and the course's commands say `sudo lab ...`; a root shell in a fresh
# container has none, and with it installed those commands work there as written.
command -v sudo >/dev/null || pkgs+=(sudo)
[ "$WITH_VM" = 1 ] && pkgs+=(qemu-system-x86 xz-utils busybox-static)
[ "$WITH_VAGRANT" = 1 ] && pkgs+=(vagrant)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The lab's rules need the nft-backed iptables (what Debian 12 and the kernel here provide).
if command -v update-alternatives >/dev/null && [ -e /usr/sbin/iptables-nft ] \
   && ! { [ "$CHECK_FIRST" = 1 ] && [ "$(readlink -f /etc/alternatives/iptables)" = /usr/sbin/iptables-nft ]; }; then
  update-alternatives --set iptables /usr/sbin/iptables-nft >/dev/null 2>&1 || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "$CHECK_FIRST" = 1 ] && [ -f dist/cli/main.js ] \
   && [ -z "$(find src tsconfig.json package-lock.json -newer dist/cli/main.js -print -quit)" ]; then
  echo "setup: build is up to date"
else
  echo "setup: build"
  npm run -s build
  touch dist/cli/main.js   # tsc keeps unchanged outputs' times; this marks the build as done
fi
# LAB_BIN_DIR: where the `lab` link goes (tests point it at a scratch directory).
bin_dir=${LAB_BIN_DIR:-/usr/local/bin}
if [ "$CHECK_FIRST" = 1 ] && [ "$(readlink "$bin_dir/lab" 2>/dev/null)" = "$PWD/bin/lab" ]; then :; else
  ln -sf "$PWD/bin/lab" "$bin_dir/lab"
fi
echo "setup: done; 'lab' is $bin_dir/lab"
