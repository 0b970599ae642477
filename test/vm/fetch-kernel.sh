#!/usr/bin/env bash
# fetch-kernel.sh — get a stock Debian kernel that has Geneve (and 9p, TPROXY, xt_socket,
# ipset) as modules, plus busybox-static and kmod, from Debian's package repositories,
# and build the initramfs that run-in-vm.sh boots. The machines the lab runs on have a
# kernel without Geneve and without loadable modules; this kernel is what lets CI prove
# the `tunnel: kernel` path.
#
# Everything comes from apt (apt-get download + dpkg -x, nothing is installed) and lands
# in $AMBIENT_LAB_VM_DIR (default /var/tmp/ambient-lab-vm). Idempotent: when the kernel is
# already there it says so and only rebuilds the initramfs if test/vm/init changed.
# Needs: apt, dpkg, xz, gzip (xz-utils). Exit 0 on success, 1 on failure.
set -euo pipefail
VM_DIR=${AMBIENT_LAB_VM_DIR:-/var/tmp/ambient-lab-vm}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$VM_DIR"
# Two test runs (or setup.sh and a test) may fetch at once; the second waits for the first.
exec 9>"$VM_DIR/.lock"
flock 9

ready() { [ -s "$VM_DIR/vmlinux" ] && [ -s "$VM_DIR/kernel-version" ] && [ -f "$VM_DIR/k/lib/modules/$(cat "$VM_DIR/kernel-version")/modules.dep" ] && [ -x "$VM_DIR/bin/kmod" ]; }

if ready; then
  KV=$(cat "$VM_DIR/kernel-version")
  if [ -s "$VM_DIR/initramfs.cpio.gz" ] && [ "$VM_DIR/initramfs.cpio.gz" -nt "$HERE/init" ] && [ "$VM_DIR/initramfs.cpio.gz" -nt "$HERE/build-initramfs.sh" ]; then
    echo "fetch-kernel: kernel $KV already cached in $VM_DIR; nothing to fetch"
    exit 0
  fi
  echo "fetch-kernel: kernel $KV already cached in $VM_DIR; rebuilding the initramfs only"
  exec env AMBIENT_LAB_VM_DIR="$VM_DIR" "$HERE/build-initramfs.sh"
fi

for tool in apt-get apt-cache dpkg xz gzip; do
  command -v "$tool" >/dev/null || { echo "fetch-kernel: '$tool' is missing (install apt/dpkg/xz-utils)" >&2; exit 1; }
done

# linux-image-amd64 is a metapackage whose one Depends is the current kernel image.
# (Not linux-image-cloud-amd64: that flavour is built without 9p, which the guest needs
# to see the host's root.) A fresh machine may have no package lists yet.
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kernel_pkg)
if [ -z "$KPKG" ]; then
  echo "fetch-kernel: no package lists for linux-image-amd64; running apt-get update"
  apt-get update -qq
  KPKG=$(kernel_pkg)
fi
[ -n "$KPKG" ] || { echo "fetch-kernel: cannot resolve linux-image-amd64 to a kernel package" >&2; exit 1; }
KV=${KPKG#linux-image-}
echo "fetch-kernel: fetching $KPKG, busybox-static, kmod into $VM_DIR"

# Unpack into a scratch dir and move into place at the end, so an interrupted fetch
# never leaves a half-unpacked kernel that ready() would take for a good one.
T=$(mktemp -d "$VM_DIR/.fetch.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/debs"
# apt-get download drops privileges to _apt; a scratch dir it can write keeps it quiet.
chmod 755 "$T" && chown _apt "$T/debs" 2>/dev/null || true
(cd "$T/debs" && apt-get download -q "$KPKG" busybox-static kmod)
mkdir -p "$T/k" "$T/bb" "$T/kmod" "$T/bin"
dpkg -x "$T/debs/${KPKG}"_*.deb "$T/k"
dpkg -x "$T/debs"/busybox-static_*.deb "$T/bb"
dpkg -x "$T/debs"/kmod_*.deb "$T/kmod"
cp "$T/bb/bin/busybox" "$T/bin/busybox"
cp "$T/kmod/bin/kmod" "$T/bin/kmod"
# kmod picks its personality from argv[0].
ln -sf kmod "$T/bin/depmod"; ln -sf kmod "$T/bin/modprobe"
# The package's postinst would run depmod; dpkg -x does not.
"$T/bin/depmod" -b "$T/k" "$KV"

# qemu boots an uncompressed ELF vmlinux through its PVH entry point, skipping the
# in-guest xz decompression: about 3 s to the first guest command under TCG instead of
# ~6.5 s with the bzImage. The payload is the one xz stream inside the bzImage.
BZ="$T/k/boot/vmlinuz-$KV"
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$BZ" | head -1 | cut -d: -f1 || true)
[ -n "$off" ] || { echo "fetch-kernel: no xz payload found in $BZ" >&2; exit 1; }
tail -c +$((off + 1)) "$BZ" | xz -dc --single-stream > "$T/vmlinux" 2>/dev/null || true
head -c 4 "$T/vmlinux" | grep -q ELF || { echo "fetch-kernel: vmlinux extraction failed" >&2; exit 1; }

# Modules the lab's data path needs; fail now, not deep inside a VM boot, if the kernel lacks one.
missing=()
for m in geneve udp_tunnel ip6_udp_tunnel veth bridge tun 9p 9pnet_virtio overlay \
         nf_tables nft_compat xt_TPROXY nf_tproxy_ipv4 xt_socket xt_mark xt_connmark xt_set \
         ip_set_hash_ip xt_comment xt_statistic xt_MASQUERADE nft_masq nf_nat xt_nat xt_tcpudp xt_addrtype; do
  "$T/bin/modprobe" -d "$T/k" -S "$KV" --show-depends "$m" >/dev/null 2>&1 || missing+=("$m")
done
[ ${#missing[@]} -eq 0 ] || { echo "fetch-kernel: $KPKG lacks modules: ${missing[*]}" >&2; exit 1; }

rm -rf "$VM_DIR/k" "$VM_DIR/bin" "$VM_DIR/vmlinux"
mv "$T/k" "$T/bin" "$T/vmlinux" "$VM_DIR/"
mkdir -p "$VM_DIR/debs"; mv "$T/debs"/*.deb "$VM_DIR/debs/"
echo "$KV" > "$VM_DIR/kernel-version"
AMBIENT_LAB_VM_DIR="$VM_DIR" "$HERE/build-initramfs.sh"
echo "fetch-kernel: kernel $KV ready in $VM_DIR ($(du -sh --apparent-size "$VM_DIR" | cut -f1))"
