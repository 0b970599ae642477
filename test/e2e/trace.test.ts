// `lab trace`, `lab capture`, `lab graph` on real labs: the hops a request takes, checked
// against the path the lab's design says it must take (not against a recording of itself).
import t from 'tap';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, lab, waitFor } from './helpers.js';

const NOMESH = 'tt-trace-nm';
const AMB = 'tt-trace-amb';
const out = mkdtempSync(join(tmpdir(), 'alt-trace-'));

t.teardown(() => {
  lab(['down', NOMESH]);
  lab(['down', AMB]);
  rmSync(out, { recursive: true, force: true });
});

interface Hop { index: number; leg: number; role: string; name: string; netns: string; interface: string; src: string; dst: string; encap: string; vni?: number; reason?: string; outer?: { src: string; dst: string } }
interface Report { hops: Hop[]; legs: { id: number; server: string; encap: string; reused: boolean }[]; later: { leg: number; direction: string; flags: string[]; hops: Hop[] }[]; request: { ok: boolean; summary: string }; files?: { keyLog?: string } }

function trace(labName: string, args: string[]): Report {
  const r = lab(['trace', '--lab', labName, ...args, '--json'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`lab trace failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as Report;
}
const where = (h: Hop): string => `${h.role} ${h.name} ${h.interface}${h.vni ? ` vni ${h.vni}` : ''}`;
const tshark = (args: string[]): string => spawnSync('tshark', args, { encoding: 'utf8' }).stdout ?? '';

t.test('no mesh: pod -> node veth -> node eth0 -> underlay -> node-b -> httpbin', async (t) => {
  const up = lab(['up', 'topologies/demo.yaml', NOMESH, '--no-mesh']);
  t.equal(up.code, 0, up.stderr);
  const dir = join(out, 'nomesh');
  const r = trace(NOMESH, ['sleep', 'http://httpbin:8000/ip', '--out', dir]);
  t.ok(r.request.ok, r.request.summary);
  t.same(r.hops.map(where), [
    'pod sleep eth0',
    'node node-a veth-sleep',
    'node node-a eth0',
    'underlay underlay underlay-node-a',
    'underlay underlay underlay-node-b',
    'node node-b eth0',
    'node node-b veth-httpbin',
    'pod httpbin eth0',
  ]);
  t.match(r.hops[0], { src: /^10\.244\.0\.4:\d+$/, dst: '10.96.0.11:8000', encap: 'none' }, 'the pod sends to the Service VIP');
  t.match(r.hops[2], { dst: '10.244.1.3:80', reason: /kube-proxy DNAT.*main table -> 172\.18\.0\.3 dev eth0/ }, 'node-a DNATs to the pod and routes by main');
  t.ok(r.hops.every((h) => h.encap === 'none'), 'no tunnel without the mesh');
  const reply = r.later.find((g) => g.leg === 1 && g.direction === 'reply' && g.flags.includes('SYN,ACK'));
  t.equal(reply && reply.hops.map(where).at(-1), 'pod sleep eth0', 'the reply comes back to sleep');
  // The captures: per hop, and merged with learner interface names and hop comments.
  t.ok(existsSync(join(dir, '01-pod-sleep-eth0.pcap')));
  t.match(tshark(['-r', join(dir, '01-pod-sleep-eth0.pcap'), '-Y', 'tcp.flags.syn==1 && tcp.flags.ack==0', '-T', 'fields', '-e', 'ip.dst']), /10\.96\.0\.11/);
  const merged = tshark(['-r', join(dir, 'merged.pcapng'), '-Y', 'frame.comment', '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.comment']);
  t.match(merged, /node:node-a:veth-sleep\thop 2: node node-a veth-sleep/);
  t.match(merged, /pod:httpbin:eth0\thop 8: pod httpbin eth0/);
});

t.test('capture --list and capture NAME:IFACE by learner name', async (t) => {
  const list = lab(['capture', '--lab', NOMESH, 'node-a', '--list']);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^veth-sleep\s+veth[0-9a-f]{8}\s/m);
  t.match(list.stdout, /^veth-ztunnel\s+veth[0-9a-f]{8}\s/m);
  const file = join(out, 'cap.pcap');
  // tcpdump by learner name, in the background, while sleep makes a request.
  const cap = spawn(process.execPath, [CLI, 'capture', '--lab', NOMESH, 'node-a:veth-sleep', '--', '-c', '1', '-w', file, 'tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  cap.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const ended = new Promise<number | null>((resolve) => cap.once('exit', (code) => resolve(code)));
  await waitFor(() => /listening on/.test(err), 5000, `lab capture to start tcpdump (stderr: ${err})`);
  t.match(err, /node-a:veth-sleep is veth[0-9a-f]{8}/, 'the learner name is resolved to the real one');
  const req = lab(['exec', '--lab', NOMESH, 'sleep', '--', 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', 'http://httpbin:8000/ip']);
  t.equal(req.stdout, '200', 'the request the capture sees succeeds');
  const timer = setTimeout(() => cap.kill('SIGINT'), 10_000);
  t.equal(await ended, 0, err);
  clearTimeout(timer);
  t.match(tshark(['-r', file, '-T', 'fields', '-e', 'ip.src', '-e', 'tcp.dstport']), /^10\.244\.0\.4\t8000$/m, 'the SYN from sleep, seen on its host veth');
  const bad = lab(['capture', '--lab', NOMESH, 'node-a:nope']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /known: .*veth-sleep/);
});

t.test('graph: mermaid and dot list nodes, pods with modes, Services', async (t) => {
  const m = lab(['graph', '--lab', NOMESH]);
  t.equal(m.code, 0, m.stderr);
  t.match(m.stdout, /flowchart TB/);
  t.match(m.stdout, /default\/sleep<br\/>10\.244\.0\.4<br\/>mode none/, 'a --no-mesh lab shows its pods as mode none');
  t.match(m.stdout, /Service default\/httpbin<br\/>10\.96\.0\.11 8000->80\/TCP/);
  const d = lab(['graph', '--lab', NOMESH, '--dot']);
  t.match(d.stdout, /subgraph cluster_node_a/);
  const svgFile = join(out, 'g.svg');
  t.equal(lab(['graph', '--lab', NOMESH, '--svg', svgFile]).code, 0);
  t.match(readFileSync(svgFile, 'utf8'), /<svg[^>]*>[\s\S]*node node-a[\s\S]*underlay-node-b/);
});

t.test('ambient: the ten steps, then the later packets bypass the tunnel', async (t) => {
  lab(['down', NOMESH]);
  const up = lab(['up', 'topologies/demo.yaml', AMB]);
  t.equal(up.code, 0, up.stderr);
  if (up.code !== 0) return;
  const dir = join(out, 'amb');
  const r = trace(AMB, ['sleep', 'http://httpbin:8000/ip', '--out', dir, '--svg', join(out, 'amb.svg')]);
  t.ok(r.request.ok, r.request.summary);
  const path = r.hops.map(where);
  // Steps 1-5: sleep's SYN is marked, routed into istioout, wrapped in Geneve 1001, TPROXYed on pistioout.
  t.same(path.slice(0, 6), [
    'pod sleep eth0', 'node node-a veth-sleep', 'node node-a istioout',
    'node node-a veth-ztunnel vni 1001', 'ztunnel ztunnel-node-a eth0 vni 1001', 'ztunnel ztunnel-node-a pistioout',
  ]);
  t.match(r.hops[2].reason, /marked 0x100; ip rule 101 -> table 101 -> 192\.168\.127\.2 dev istioout/);
  t.match(r.hops[3], { encap: 'geneve', vni: 1001, outer: { src: /^10\.244\.0\.1:/, dst: '10.244.0.2:6081' } });
  t.match(r.hops[5].reason, /TPROXY -> 127\.0\.0\.1:15001/);
  // Step 6: HBONE from ztunnel node-a to httpbin:15008 over the underlay.
  t.same(r.legs.map((l) => [l.server, l.encap]), [['10.96.0.11:8000', 'none'], ['10.244.1.3:15008', 'hbone'], ['10.244.1.3:80', 'none']]);
  const leg2 = r.hops.filter((h) => h.leg === 2).map(where);
  t.equal(leg2[0], 'ztunnel ztunnel-node-a eth0');
  t.ok(leg2.includes('underlay underlay underlay-node-b') && leg2.includes('node node-b eth0'), 'HBONE crosses the underlay');
  // The first request of a fresh lab: no pooled HBONE session yet, so the tunnel is new.
  t.equal(r.legs[1].reused, false, 'the first request opens a new HBONE tunnel');
  // Steps 7-9 (a new tunnel): node-b routes it into istioin, Geneve 1000, TPROXY 15008 on pistioin.
  t.same(leg2.slice(-4), ['node node-b istioin', 'node node-b veth-ztunnel vni 1000', 'ztunnel ztunnel-node-b eth0 vni 1000', 'ztunnel ztunnel-node-b pistioin']);
  t.match(r.hops.find((h) => h.interface === 'pistioin')?.reason, /TPROXY -> 127\.0\.0\.1:15008/);
  // Step 10: ztunnel node-b to the pod, spoofing sleep's IP.
  t.same(r.hops.filter((h) => h.leg === 3).map(where), ['ztunnel ztunnel-node-b eth0', 'node node-b veth-ztunnel', 'node node-b veth-httpbin', 'pod httpbin eth0']);
  t.match(r.hops.filter((h) => h.leg === 3)[0].src, /^10\.244\.0\.4:/);
  // Later packets of sleep's connection: table 102 over the ztunnel veth, no istioout, no Geneve.
  const acks = r.later.find((g) => g.leg === 1 && g.direction === 'request');
  t.same(acks?.hops.map(where), ['pod sleep eth0', 'node node-a veth-sleep', 'node node-a veth-ztunnel', 'ztunnel ztunnel-node-a eth0']);
  t.match(acks?.hops[2].reason, /marked 0x40; ip rule 102 -> table 102/);
  t.match(acks?.hops[3].reason, /0x4d3/);
  // A second request reuses the pooled tunnel: the trace still links both ztunnels.
  const again = trace(AMB, ['sleep', 'http://httpbin:8000/ip']);
  t.same(again.legs.map((l) => l.server), ['10.96.0.11:8000', '10.244.1.3:15008', '10.244.1.3:80']);
  t.equal(again.legs[1].reused, true, 'the second request rides the pooled tunnel');
  t.match(readFileSync(join(out, 'amb.svg'), 'utf8'), /istioout[\s\S]*pistioout/);
  t.ok(r.files?.keyLog, '--out kept the TLS key log');
  const connect = tshark(['-r', join(dir, 'merged.pcapng'), '-o', `tls.keylog_file:${join(dir, 'keys.log')}`, '-Y', 'http2.headers.method == "CONNECT"', '-T', 'fields', '-e', 'http2.headers.authority']);
  t.match(connect, /10\.244\.1\.3:80/, 'tshark decodes the HBONE CONNECT with the key log');
});

t.test('ambient: same-node request and a request to a mode:none pod', async (t) => {
  // coredns (mode none) on node-a, reached by IP:PORT over TCP from sleep: still captured by
  // node-a's rules (sleep is enrolled), so it goes through ztunnel node-a, which connects directly.
  const r = trace(AMB, ['sleep', '10.244.0.3:53']);
  t.same(r.hops.slice(0, 3).map(where), ['pod sleep eth0', 'node node-a veth-sleep', 'node node-a istioout']);
  t.equal(r.legs.at(-1)?.server, '10.244.0.3:53');
  t.same(r.hops.filter((h) => h.leg === r.legs.at(-1)!.id).map(where).slice(-2), ['node node-a veth-coredns', 'pod coredns eth0']);
  t.notOk(r.hops.some((h) => h.interface.startsWith('underlay')), 'same node: never on the underlay');
});
