// The ambient L4 path on the real kernel: istio-cni rules on the nodes, Geneve to the
// ztunnel pod, TPROXY, HBONE between ztunnels, source IP preserved. Every claim is checked
// by what a user would see: the reply, the source IP httpbin saw, rule counters, packets.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { lab, leftovers, ruleCounters, counterOf, linkStats, curlIn, upJson, podIp, sh, startCapture, waitFor } from './helpers.js';

const NAME = 'tt-amb';
const NA = `al-${NAME}-node-node-a`;
const NB = `al-${NAME}-node-node-b`;
const ZA = `al-${NAME}-pod-istio-system.ztunnel-node-a`;
const ZB = `al-${NAME}-pod-istio-system.ztunnel-node-b`;

t.teardown(() => { lab(['down', NAME]); });

const up = upJson('test/fixtures/topologies/mesh.yaml', NAME);
const s = up.summary;

t.test('lab comes up with the mesh', async (t) => {
  t.ok(up.ok, `lab up works\n${up.stderr}`);
});

t.test('cross-node ambient -> ambient by Service name: source IP preserved, every hop counted', async (t) => {
  const mangleA0 = ruleCounters(NA, 'mangle');
  const tproxyA0 = ruleCounters(ZA, 'mangle');
  const tproxyB0 = ruleCounters(ZB, 'mangle');
  const outA0 = linkStats(NA, 'istioout');
  const inB0 = linkStats(NB, 'istioin');

  const r = curlIn(NAME, 'sleep', 'http://httpbin:8000/ip');
  t.equal(r.code, 0, `curl works\n${r.stderr}`);
  t.same(JSON.parse(r.stdout || '{}'), { origin: podIp(s, 'default/sleep') }, 'httpbin saw the sleep pod IP');

  const mangleA = ruleCounters(NA, 'mangle');
  const rule15 = /^-A ztunnel-PREROUTING -p tcp -m set --match-set ztunnel-pods-ips src -j MARK --set-xmark 0x100\/0x100/;
  t.ok(counterOf(mangleA, rule15) > counterOf(mangleA0, rule15), 'node-a: the 0x100 rule matched the SYN');
  t.ok(linkStats(NA, 'istioout').tx > outA0.tx, 'node-a: packets left through istioout (table 101)');
  t.ok(linkStats(NB, 'istioin').tx > inB0.tx, 'node-b: packets left through istioin (table 100)');
  const tp15001 = /--on-port 15001/;
  const tp15008 = /--on-port 15008/;
  t.ok(counterOf(ruleCounters(ZA, 'mangle'), tp15001) > counterOf(tproxyA0, tp15001), 'ztunnel-node-a: TPROXY to 15001 moved');
  t.ok(counterOf(ruleCounters(ZB, 'mangle'), tp15008) > counterOf(tproxyB0, tp15008), 'ztunnel-node-b: TPROXY to 15008 (HBONE) moved');
});

t.test('same-node ambient -> ambient, by pod IP', async (t) => {
  const ip = podIp(s, 'default/httpbin');
  const r = curlIn(NAME, 'sleep-b', `http://${ip}:80/ip`);
  t.equal(r.code, 0, `curl works\n${r.stderr}`);
  t.same(JSON.parse(r.stdout || '{}'), { origin: podIp(s, 'default/sleep-b') }, 'httpbin saw sleep-b');
});

t.test('cross-node by pod IP', async (t) => {
  const r = curlIn(NAME, 'sleep', `http://${podIp(s, 'default/httpbin')}:80/ip`);
  t.equal(r.code, 0, `curl works\n${r.stderr}`);
  t.same(JSON.parse(r.stdout || '{}'), { origin: podIp(s, 'default/sleep') });
});

t.test('ambient -> mode:none (passthrough) and none -> ambient (plaintext inbound 15006)', async (t) => {
  const a = curlIn(NAME, 'sleep', 'http://web:8080/ip');
  t.same(JSON.parse(a.stdout || '{}'), { origin: podIp(s, 'default/sleep') }, 'ambient -> none works, source preserved');
  const zb0 = ruleCounters(ZB, 'mangle');
  const b = curlIn(NAME, 'plain', 'http://httpbin:8000/ip');
  t.same(JSON.parse(b.stdout || '{}'), { origin: podIp(s, 'default/plain') }, 'none -> ambient works, source preserved');
  t.ok(counterOf(ruleCounters(ZB, 'mangle'), /--on-port 15006/) > counterOf(zb0, /--on-port 15006/), 'inbound plaintext went through TPROXY 15006');
});

t.test('a mode:none pod is not redirected: its traffic never reaches istioout', async (t) => {
  // A capture, not the link counter: the tunnel devices also carry IPv6 neighbour chatter.
  const plainIp = podIp(s, 'default/plain');
  const file = `/tmp/${NAME}-plain.pcap`;
  const cap = await startCapture(NA, 'istioout', file, `host ${plainIp}`);
  const sleepCap = await startCapture(NA, 'istioout', `${file}.sleep`, `host ${podIp(s, 'default/sleep')}`);
  const r = curlIn(NAME, 'plain', 'http://web:8080/ip');
  t.same(JSON.parse(r.stdout || '{}'), { origin: plainIp });
  t.equal(curlIn(NAME, 'sleep', 'http://web:8080/ip').code, 0, 'control: an ambient pod\'s request in the same window');
  await Promise.all([cap.stop(), sleepCap.stop()]);
  const count = (f: string) => Number(sh(`tcpdump -r ${f} -nn 2>/dev/null | wc -l`).trim());
  t.equal(count(file), 0, 'istioout carried no packet of the mode:none pod');
  t.ok(count(`${file}.sleep`) > 0, 'while the ambient pod\'s SYN did go through istioout (the capture works)');
  sh(`rm -f ${file} ${file}.sleep`);
});

t.test('Geneve on the wire: VNI 1001 outbound, 1000 inbound, on the node-to-ztunnel veth', async (t) => {
  const zvA = sh(`ip -n ${NA} -o link show | grep -F 'ztunnel-node-a' | sed -E 's/^[0-9]+: ([^@:]+).*/\\1/'`).trim();
  const zvB = sh(`ip -n ${NB} -o link show | grep -F 'ztunnel-node-b' | sed -E 's/^[0-9]+: ([^@:]+).*/\\1/'`).trim();
  t.ok(zvA && zvB, `found the ztunnel veths (${zvA}, ${zvB})`);
  const pa = `/tmp/${NAME}-a.pcap`;
  const pb = `/tmp/${NAME}-b.pcap`;
  const ca = await startCapture(NA, zvA, pa, 'udp port 6081');
  const cb = await startCapture(NB, zvB, pb, 'udp port 6081');
  t.equal(curlIn(NAME, 'sleep', 'http://httpbin:8000/ip').code, 0, 'ambient client: outbound capture on node-a');
  // The ztunnels pool HBONE sessions, so an earlier test's session to node-b may carry this request
  // without a new SYN through istioin; a plaintext client from outside the mesh always opens one.
  t.equal(curlIn(NAME, 'plain', 'http://httpbin:8000/ip').code, 0, 'mode:none client: inbound capture on node-b');
  await Promise.all([ca.stop(), cb.stop()]);
  // tshark prints the VNI in hex (0x0003e9); -T fields gives one value per Geneve packet.
  const vnis = (f: string) => [...new Set(sh(`tshark -r ${f} -T fields -e geneve.vni 2>/dev/null`).trim().split('\n').filter(Boolean).map((v) => Number(v)))];
  const vnisA = vnis(pa);
  const vnisB = vnis(pb);
  t.ok(vnisA.includes(1001), `node-a: tshark decodes Geneve VNI 1001 (saw ${vnisA})`);
  t.ok(vnisB.includes(1000), `node-b: tshark decodes Geneve VNI 1000 (saw ${vnisB})`);
  const inner = sh(`tshark -r ${pa} -Y 'geneve.vni == 1001 && tcp.flags.syn == 1' -T fields -e ip.src -e ip.dst 2>/dev/null | head -1`);
  t.match(inner, `${podIp(s, 'default/sleep')}`, 'the inner packet is the sleep pod\'s SYN');
  sh(`rm -f ${pa} ${pb}`);
});

t.test('ztunnel config dump has the seed talk\'s workload fields', async (t) => {
  const dump = sh(`ip netns exec ${ZA} curl -s --max-time 5 http://127.0.0.1:15000/config_dump`);
  let cfg: any;
  try { cfg = JSON.parse(dump); } catch { cfg = undefined; }
  t.ok(cfg, 'config_dump is JSON');
  const w = cfg && Object.values(cfg.workloads ?? {}).find((x: any) => x.name === 'httpbin') as any;
  t.ok(w, 'httpbin is a known workload');
  for (const k of ['workloadIp', 'waypointAddresses', 'gatewayAddress', 'protocol', 'name', 'namespace', 'trustDomain', 'serviceAccount',
    'workloadName', 'workloadType', 'canonicalName', 'canonicalRevision', 'node', 'nativeHbone', 'authorizationPolicies', 'status', 'clusterId']) {
    t.ok(w && k in w, `workload has ${k}`);
  }
  t.equal(w?.protocol, 'HBONE');
});

t.test('lab ztunnel config shows the workloads', async (t) => {
  const r = lab(['ztunnel', 'config', 'node-b', '--lab', NAME, '--json']);
  t.equal(r.code, 0, r.stderr);
  const httpbin = Object.values(JSON.parse(r.stdout).workloads).find((w: any) => w.name === 'httpbin') as any;
  t.match(httpbin, { workloadIp: podIp(s, 'default/httpbin'), protocol: 'HBONE', node: 'node-b', serviceAccount: 'httpbin', clusterId: 'Kubernetes' });
});

t.test('a ztunnel that dies is noticed and restarted; traffic flows again', async (t) => {
  const pidOf = () => JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout).processes.find((p: any) => p.id === 'ztunnel/node-a');
  const before = pidOf();
  t.match(before, { alive: true, ready: true, restarts: 0 }, 'the ztunnel runs before');
  process.kill(before.pid, 'SIGKILL');
  // `lab status` is what a user watches: a new PID, alive and ready.
  const after = await waitFor(() => { const p = pidOf(); return p.pid !== before.pid && p.ready && p; }, 10_000, 'status to show a new, ready ztunnel');
  t.match(after, { alive: true, ready: true, restarts: 1 }, 'status shows the new ztunnel alive and ready, and counts the restart');
  const r = curlIn(NAME, 'sleep', 'http://httpbin:8000/ip');
  t.equal(r.code, 0, `curl works\n${r.stderr}`);
  t.same(JSON.parse(r.stdout || '{}'), { origin: podIp(s, 'default/sleep') }, 'requests work through the new ztunnel');
});

t.test('lab down removes everything', async (t) => {
  t.equal(lab(['down', NAME]).code, 0);
  t.same(leftovers(NAME), []);
  t.notOk(readFileSync('/proc/net/dev', 'utf8').includes('istioin'), 'no istioin in the root namespace');
});
