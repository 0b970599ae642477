# guest-geneve-smoke.sh — a quick check of the VM harness itself, independent of the lab:
# two netns joined by a veth, a kernel Geneve device in each (VNI 1000, port 6081),
# a ping and a Node UDP datagram across the tunnel, and the netfilter matches the lab's
# rules use, each of which must autoload its module. Run it with
#   test/vm/run-in-vm.sh - < test/vm/guest-geneve-smoke.sh
# (it runs in the guest only; every object it makes vanishes with the VM).
set -euo pipefail
echo "=== kernel ==="; uname -r
ip netns add alt-vm-a; ip netns add alt-vm-b
ip link add va netns alt-vm-a type veth peer name vb netns alt-vm-b
ip -n alt-vm-a addr add 10.9.0.1/24 dev va; ip -n alt-vm-a link set va up; ip -n alt-vm-a link set lo up
ip -n alt-vm-b addr add 10.9.0.2/24 dev vb; ip -n alt-vm-b link set vb up; ip -n alt-vm-b link set lo up
ip -n alt-vm-a link add g0 type geneve id 1000 remote 10.9.0.2
ip -n alt-vm-b link add g0 type geneve id 1000 remote 10.9.0.1
ip -n alt-vm-a addr add 192.168.77.1/24 dev g0; ip -n alt-vm-a link set g0 up
ip -n alt-vm-b addr add 192.168.77.2/24 dev g0; ip -n alt-vm-b link set g0 up
echo "=== geneve ==="; ip -n alt-vm-a -d link show g0 | grep -o 'geneve id [0-9]* remote [0-9.]*'
ip netns exec alt-vm-a tcpdump -i va -U -w /tmp/smoke.pcap udp port 6081 2> /tmp/smoke.err &
for _ in $(seq 50); do grep -q listening /tmp/smoke.err && break; sleep 0.1; done
echo "=== ping ==="
# The host has no ping; the busybox copied in by init has one.
ip netns exec alt-vm-a /.vm/busybox ping -c 2 -W 2 192.168.77.2 | grep -E 'packets transmitted'
kill -INT %1; wait
echo "=== capture ==="; tcpdump -r /tmp/smoke.pcap -nn -v 2>/dev/null | head -n 4
echo "=== capture-oneline ==="; tcpdump -r /tmp/smoke.pcap -nn 2>/dev/null | grep ICMP | head -n 2
echo "=== udp ==="
ip netns exec alt-vm-b node -e '
  const s = require("dgram").createSocket("udp4");
  s.on("message", (m, r) => { console.log("got", String(m), "from", r.address); process.exit(0); });
  s.bind(5000, "192.168.77.2", () => require("child_process").execSync(
    "ip netns exec alt-vm-a node -e \"require(\x27dgram\x27).createSocket(\x27udp4\x27).send(\x27hi-over-geneve\x27, 5000, \x27192.168.77.2\x27, () => process.exit(0))\""));
  setTimeout(() => { console.log("no datagram"); process.exit(1); }, 20000);'
echo "=== bridge+tap ==="
ip -n alt-vm-a link add alt-br type bridge
ip -n alt-vm-a tuntap add alt-tap mode tap
ip -n alt-vm-a -o link show | grep -oE 'alt-(br|tap)' | tr '\n' ' '; echo
echo "=== netfilter ==="
ip netns exec alt-vm-a sh -e -c '
  iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark 0x1/0x1
  iptables -t mangle -A PREROUTING -p tcp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 15001
  ipset create alt-set hash:ip; ipset add alt-set 10.9.0.2
  iptables -t mangle -A PREROUTING -m set --match-set alt-set dst -m comment --comment x -j CONNMARK --set-mark 0x100
  iptables -t nat -A POSTROUTING -m addrtype --src-type LOCAL -m statistic --mode random --probability 0.5 -j MASQUERADE
  iptables -t nat -A PREROUTING -p udp --dport 53 -j DNAT --to-destination 10.9.0.2
  iptables-save | grep -c -- "-A "'
echo "=== modules ==="
lsmod | awk 'NR>1{print $1}' | sort | tr '\n' ' '; echo
