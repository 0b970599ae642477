#!/usr/bin/env bash
# build-initramfs.sh — pack $AMBIENT_LAB_VM_DIR/initramfs.cpio.gz: busybox-static, our
# init (test/vm/init), kmod, and only the modules needed before the guest can reach the
# kernel's full module tree (virtio PCI, 9p over virtio, overlayfs). Every other module
# (geneve, xt_TPROXY, ...) autoloads later from the 9p-shared module tree, once init has
# switch_rooted into the shared host root. Called by fetch-kernel.sh.
set -euo pipefail
VM_DIR=${AMBIENT_LAB_VM_DIR:-/var/tmp/ambient-lab-vm}
HERE=$(cd "$(dirname "$0")" && pwd)
KV=$(cat "$VM_DIR/kernel-version")
K="$VM_DIR/k"
MODROOT="$K/lib/modules/$KV"
MODPROBE="$VM_DIR/bin/modprobe"
[ -f "$MODROOT/modules.dep" ] || "$VM_DIR/bin/depmod" -b "$K" "$KV"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/lib/modules"
cp "$VM_DIR/bin/busybox" "$T/bin/busybox"
for a in $("$T/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$T/bin/$a"; done
cp "$VM_DIR/bin/kmod" "$T/kmod"
cp "$HERE/init" "$T/init"; chmod 755 "$T/init"

# Order matters: insmod takes no dependencies into account, so list each module's
# dependencies (modprobe --show-depends prints them first) before the module itself.
: > "$T/modules.list"
for m in virtio_pci virtio_rng 9pnet_virtio 9p overlay; do
  "$MODPROBE" -d "$K" -S "$KV" --show-depends "$m" | while read -r kind f _; do
    [ "$kind" = insmod ] || continue        # "builtin <name>": already in the kernel image
    b=$(basename "$f")
    grep -qxF "$b" "$T/modules.list" || { cp "$f" "$T/lib/modules/$b"; echo "$b" >> "$T/modules.list"; }
  done
done

(cd "$T" && find . | "$T/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$VM_DIR/initramfs.cpio.gz.new"
mv "$VM_DIR/initramfs.cpio.gz.new" "$VM_DIR/initramfs.cpio.gz"
echo "build-initramfs: $VM_DIR/initramfs.cpio.gz ($(stat -c %s "$VM_DIR/initramfs.cpio.gz") bytes; modules: $(tr '\n' ' ' < "$T/modules.list"))"
