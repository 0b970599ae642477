#!/usr/bin/env bash
# run-in-vm.sh — run one command or script under the stock Debian kernel fetched by
# fetch-kernel.sh (the one with kernel Geneve), in a throw-away qemu VM that sees the
# host's root read-only (tmpfs overlay on top), and hand back its stdout, stderr and
# exit code. Used by test/e2e/kernel-vm.test.ts; one boot costs ~3 s under TCG, so batch
# every check of a test into one script.
#
#   run-in-vm.sh 'ip link add g0 type geneve id 1000 remote 10.0.0.2'   (bash -c in the guest)
#   run-in-vm.sh - < script.sh                                          (a script on stdin)
#
# Env: VM_TIMEOUT (s, default 300)  VM_MEM (MiB, 1024)  VM_CPUS (default nproc)
#      VM_RW_DIRS=/a:/b   host folders the guest may write, at the same path
#      VM_VERBOSE=1       print the guest console (kernel + init messages) to stderr
#      VM_TIMING=1        print boot and command timings to stderr
#      AMBIENT_LAB_VM_DIR (default /var/tmp/ambient-lab-vm)
# Exit: the command's exit code; 124 on timeout; 125 when the VM could not run it.
set -uo pipefail
VM_DIR=${AMBIENT_LAB_VM_DIR:-/var/tmp/ambient-lab-vm}
VM_TIMEOUT=${VM_TIMEOUT:-300}
VM_MEM=${VM_MEM:-1024}
VM_CPUS=${VM_CPUS:-$(nproc)}
die() { echo "run-in-vm: $*" >&2; exit 125; }

[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || { echo "usage: $0 'command' | $0 - < script" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
KV=$(cat "$VM_DIR/kernel-version" 2>/dev/null) || die "no kernel in $VM_DIR (run test/vm/fetch-kernel.sh)"
KERNEL=$VM_DIR/vmlinux
MODS=$VM_DIR/k/lib/modules/$KV
INITRD=$VM_DIR/initramfs.cpio.gz
for f in "$KERNEL" "$INITRD" "$MODS/modules.dep"; do [ -e "$f" ] || die "missing $f (run test/vm/fetch-kernel.sh)"; done

# The job folder is shared with the guest (9p, tag vmjob): cmd/cwd/path in, out/err/rc back.
JOB=$(mktemp -d /tmp/ambient-lab-vmjob.XXXXXX)
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$JOB"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$1" = "-" ]; then cat > "$JOB/cmd"; else printf '%s\n' "$*" > "$JOB/cmd"; fi
pwd > "$JOB/cwd"
printf '%s\n' "$PATH" > "$JOB/path"
RW_ARGS=(); n=0; : > "$JOB/rwmounts"
IFS=: read -r -a rw_dirs <<< "${VM_RW_DIRS:-}"
for d in "${rw_dirs[@]}"; do
  [ -n "$d" ] || continue
  d=$(realpath "$d") || die "VM_RW_DIRS: no such folder $d"
  RW_ARGS+=(-fsdev "local,id=rw$n,path=$d,security_model=none" -device "virtio-9p-pci,fsdev=rw$n,mount_tag=rw$n")
  echo "rw$n $d" >> "$JOB/rwmounts"; n=$((n + 1))
done
chmod 777 "$JOB"

# TCG, never KVM: /dev/kvm on these machines is PVM-based and a stock kernel dies under
# it with "emulation failure". The PVH entry of the uncompressed vmlinux and a quiet
# console keep a boot to ~3 s. panic=-1 + -no-reboot: a guest panic ends qemu at once.
APPEND="console=ttyS0 quiet loglevel=3 panic=-1 nokaslr mitigations=off tsc=reliable no_timer_check random.trust_cpu=on rdinit=/init"
CONSOLE=$JOB/console.log
T0=$(date +%s.%N)
# -k: qemu ignoring SIGTERM must not hang CI. --foreground keeps it killable from our tty.
timeout --foreground -k 5 "$VM_TIMEOUT" qemu-system-x86_64 \
  -accel tcg,thread=multi,tb-size=256 -cpu max -m "$VM_MEM" -smp "$VM_CPUS" \
  -M q35 -nodefaults -no-user-config -display none -no-reboot \
  -chardev file,id=ser0,path="$CONSOLE" -serial chardev:ser0 \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev local,id=kmods,path="$MODS",security_model=none,readonly=on \
  -device virtio-9p-pci,fsdev=kmods,mount_tag=kmods \
  -fsdev local,id=vmjob,path="$JOB",security_model=none \
  -device virtio-9p-pci,fsdev=vmjob,mount_tag=vmjob \
  -device virtio-rng-pci "${RW_ARGS[@]}" -net none &
QPID=$!
wait "$QPID"; qrc=$?; QPID=
T2=$(date +%s.%N)
if [ "${VM_TIMING:-0}" = 1 ]; then
  T1=$(stat -c %.9Y "$JOB/started" 2>/dev/null || echo "$T2")
  awk -v a="$T0" -v b="$T1" -v c="$T2" 'BEGIN{printf "run-in-vm: boot %.2fs, command+poweroff %.2fs, total %.2fs\n", b-a, c-b, c-a}' >&2
fi
[ "${VM_VERBOSE:-0}" = 1 ] && { echo "----- guest console -----" >&2; tr -d '\r' < "$CONSOLE" >&2; echo "-------------------------" >&2; }
[ -f "$JOB/out" ] && cat "$JOB/out"
[ -f "$JOB/err" ] && cat "$JOB/err" >&2
if [ -s "$JOB/rc" ]; then exit "$(cat "$JOB/rc")"; fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "run-in-vm: timeout after ${VM_TIMEOUT}s" >&2; exit 124; fi
echo "run-in-vm: the guest reported no exit code (qemu exit $qrc); console tail:" >&2
tail -n 30 "$CONSOLE" 2>/dev/null | tr -d '\r' >&2
exit 125
