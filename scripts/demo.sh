#!/usr/bin/env bash
# The README's first command: set up this machine, bring up topologies/demo.yaml and show a
# request from the sleep pod (node-a) reaching httpbin (node-b) by Service name, across the mesh.
set -euo pipefail
# Root is needed: a user with sudo runs ./scripts/demo.sh and it re-executes itself with sudo;
# a root shell (a fresh container has no sudo) runs it as is.
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "demo.sh: run it as root (there is no sudo here)" >&2; exit 2; }
  exec sudo bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if lab status --json 2>/dev/null | grep -q '"lab": "demo"'; then
  echo "demo lab is already up; recreating it"; lab down demo
fi
lab up topologies/demo.yaml
echo
echo "\$ lab exec sleep -- curl -s http://httpbin:8000/ip"
lab exec sleep -- curl -s --max-time 10 http://httpbin:8000/ip
echo
echo "\$ lab exec node-a -- iptables -t mangle -L ztunnel-PREROUTING -v -n | grep 0x100   # istio-cni caught the SYN"
lab exec node-a -- iptables -t mangle -L ztunnel-PREROUTING -v -n | grep 0x100 || true
echo "\$ lab logs ztunnel-node-b --raw | tail -1                                     # node-b's ztunnel took it over HBONE"
lab logs ztunnel-node-b --raw | tail -1 | cut -c1-400
echo
echo "The reply's origin is the sleep pod's own IP: the request crossed node-a -> node-b through both ztunnels (mTLS HBONE)."
echo "Next: lab status · lab exec node-a -- iptables-save · lab down"
