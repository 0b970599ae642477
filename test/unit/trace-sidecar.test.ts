// A request between two sidecar pods, hand-built: the app in sleep-sc connects to the Service
// (nat REDIRECT puts it on lo to 127.0.0.1:15001), the sidecar opens its own connection to
// httpbin-mtls:80 out of eth0, node-a and node-b route it, the destination pod takes it in on
// eth0 (REDIRECT to 15006), and its sidecar hands it to the app over lo from 127.0.0.6 on a
// kept-alive connection (no SYN). Also the reasons read from the pod's nat counters, and the
// sidecars' log lines (original destination, transport, Istio mTLS identities).
import t from 'tap';
import { observationsFrom, reconstruct, type NetnsFrames } from '../../src/trace/hops.js';
import { LINKTYPE_LINUX_SLL2, type CapturedFrame } from '../../src/trace/pcap.js';
import { decisionFrom, originalDestination, parseLogLines, tunnelFacts } from '../../src/trace/proxy-logs.js';
import { movedRules, parseIptablesSave } from '../../src/trace/reasons.js';
import { inboundCapture, loopbackToApp, outboundRedirect, proxyOwnConnection } from '../../src/trace/sidecar.js';
import type { ObservationPoint } from '../../src/trace/roles.js';
import { decisionLines } from '../../src/trace/render-table.js';
import { ipv4, sll2, tcp, OUT, IN, SYN, ACK, PSH } from './trace-frames.js';

const SC = '10.244.0.5';
const MTLS = '10.244.1.6';
const VIP = '10.96.0.14';

const points: ObservationPoint[] = [
  { netns: 'p-sc', role: 'sidecar', name: 'sleep-sc', key: 'default/sleep-sc', node: 'node-a', ip: SC, interfaceNames: {} },
  { netns: 'n-a', role: 'node', name: 'node-a', key: 'node-a', node: 'node-a', interfaceNames: { vethS: 'veth-sleep-sc' } },
  { netns: 'u', role: 'underlay', name: 'underlay', key: 'underlay', interfaceNames: { unA: 'underlay-node-a', unB: 'underlay-node-b' } },
  { netns: 'n-b', role: 'node', name: 'node-b', key: 'node-b', node: 'node-b', interfaceNames: { vethM: 'veth-httpbin-mtls' } },
  { netns: 'p-m', role: 'sidecar', name: 'httpbin-mtls', key: 'default/httpbin-mtls', node: 'node-b', ip: MTLS, interfaceNames: {} },
];
const ifaces: Record<string, string[]> = {
  'p-sc': ['lo', 'eth0'], 'n-a': ['lo', 'eth0', 'vethS'], u: ['lo', 'unA', 'unB'], 'n-b': ['lo', 'eth0', 'vethM'], 'p-m': ['lo', 'eth0'],
};

function build(): NetnsFrames[] {
  const frames = new Map<string, CapturedFrame[]>();
  const seen = (netns: string, iface: string, dir: number, us: number, pkt: number[]): void => {
    const data = sll2(ifaces[netns].indexOf(iface) + 1, dir, pkt);
    const list = frames.get(netns) ?? [];
    list.push({ ts: 1_000_000_000n + BigInt(us) * 1000n, linktype: LINKTYPE_LINUX_SLL2, data, origLen: data.length });
    frames.set(netns, list);
  };
  // 1: the app's SYN, already redirected: on lo to 127.0.0.1:15001 (tcpdump -i any shows a lo packet once, incoming).
  seen('p-sc', 'lo', IN, 10, ipv4(SC, '127.0.0.1', 1, 6, tcp(40000, 15001, 100, 0, SYN)));
  // 2: the sidecar's own connection to the pod's port 80.
  const syn2 = ipv4(SC, MTLS, 2, 6, tcp(41000, 80, 200, 0, SYN));
  seen('p-sc', 'eth0', OUT, 100, syn2);
  seen('n-a', 'vethS', IN, 101, syn2);
  seen('n-a', 'eth0', OUT, 102, syn2);
  seen('u', 'unA', IN, 103, syn2);
  seen('u', 'unB', OUT, 104, syn2);
  seen('n-b', 'eth0', IN, 105, syn2);
  seen('n-b', 'vethM', OUT, 106, syn2);
  seen('p-m', 'eth0', IN, 107, syn2);
  // 3: the destination sidecar's kept-alive connection to its app, from 127.0.0.6, and the app's answer on it.
  seen('p-m', 'lo', IN, 300, ipv4('127.0.0.6', MTLS, 3, 6, tcp(42000, 80, 300, 900, PSH | ACK, [0x47, 0x45, 0x54, 0x20])));
  seen('p-m', 'lo', IN, 350, ipv4(MTLS, '127.0.0.6', 4, 6, tcp(80, 42000, 900, 304, PSH | ACK, [0x48, 0x54])));
  return [...frames.entries()].map(([netns, f]) => ({ netns, frames: f, interfaces: new Map(ifaces[netns].map((n, i) => [i + 1, n])) }));
}

t.test('sidecar -> sidecar: the app\'s side and the proxy\'s side named apart; the path ends at the app', async (t) => {
  const r = reconstruct(observationsFrom(build()), points, 'p-sc', 8000);
  t.same(r.legs.map((l) => [l.client, l.server, l.origin, l.delivered, l.reused]), [
    [`${SC}:40000`, '127.0.0.1:15001', 'pod sleep-sc (the app)', 'sidecar sleep-sc', false],
    [`${SC}:41000`, `${MTLS}:80`, 'sidecar sleep-sc', 'sidecar httpbin-mtls', false],
    ['127.0.0.6:42000', `${MTLS}:80`, 'sidecar httpbin-mtls', 'pod httpbin-mtls (the app)', true],
  ]);
  t.same(r.legs.map((l) => l.app), ['opened', undefined, 'took-in']);
  t.same(r.hops.map((h) => `${h.index} ${h.where} ${h.interface}`), [
    '1 pod sleep-sc lo', '2 sidecar sleep-sc eth0', '3 node node-a veth-sleep-sc', '4 node node-a eth0', '5 underlay underlay-node-a', '6 underlay underlay-node-b',
    '7 node node-b eth0', '8 node node-b veth-httpbin-mtls', '9 sidecar httpbin-mtls eth0', '10 pod httpbin-mtls lo',
  ]);
  t.equal(r.hops[8].what, 'arrives at the sidecar pod');
  t.match(r.hops[9].what, /127\.0\.0\.6:42000 -> 10\.244\.1\.6:80 .*delivered to the app$/);
  t.notOk(r.legs.some((l) => l.client.startsWith(`${MTLS}:80`)), 'the app\'s answer on lo is not a new connection of the path');
});

// The pod's nat table after one request of each kind, as `iptables-save -c` prints it (istio-cni's rules, reference §4).
const natSave = (c: { out: number; redirect: number; hbone: number; inRedirect: number; loopback: number; own: number }): string => `*nat
[${c.hbone + c.inRedirect}:0] -A PREROUTING -p tcp -j ISTIO_INBOUND
[${c.out}:0] -A OUTPUT -p tcp -j ISTIO_OUTPUT
[${c.hbone}:0] -A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
[0:0] -A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
[0:0] -A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
[0:0] -A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
[${c.inRedirect}:0] -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
[${c.inRedirect}:0] -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
[0:0] -A ISTIO_OUTPUT -p tcp -m tcp --dport 15020 -j RETURN
[${c.loopback}:0] -A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
[0:0] -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
[0:0] -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
[${c.own}:0] -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
[0:0] -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
[0:0] -A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
[0:0] -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
[0:0] -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
[${c.redirect}:0] -A ISTIO_OUTPUT -j ISTIO_REDIRECT
[${c.redirect}:0] -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`;
const zero = { out: 0, redirect: 0, hbone: 0, inRedirect: 0, loopback: 0, own: 0 };
const movedBy = (d: Partial<typeof zero>) => movedRules(parseIptablesSave(natSave(zero)), parseIptablesSave(natSave({ ...zero, ...d })));

t.test('reasons inside a sidecar pod come from the nat counters that moved', async (t) => {
  t.equal(outboundRedirect(movedBy({ out: 2, redirect: 1, own: 1 }), `${VIP}:8000`),
    'nat OUTPUT #1 -> ISTIO_OUTPUT (+2) -> ISTIO_OUTPUT #10 -> ISTIO_REDIRECT (+1) -> ISTIO_REDIRECT #1 REDIRECT --to-ports 15001 (+1): the app\'s connection to 10.96.0.14:8000 goes to the sidecar\'s outbound listener 15001');
  t.equal(outboundRedirect(movedBy({ out: 1, own: 1 })), undefined, 'no REDIRECT moved: not said');
  t.equal(proxyOwnConnection(movedBy({ out: 1, own: 1 })), 'nat ISTIO_OUTPUT #5 --uid-owner 1337 RETURN (+1): the sidecar\'s own connection is not captured');
  t.equal(inboundCapture(movedBy({ hbone: 1 }), `${MTLS}:15008`),
    'nat PREROUTING #1 -> ISTIO_INBOUND (+1) -> ISTIO_INBOUND #1 --dport 15008 RETURN (+1): HBONE is not redirected, it reaches the sidecar\'s own 15008 listener');
  t.equal(inboundCapture(movedBy({ inRedirect: 1 }), `${MTLS}:80`),
    'nat PREROUTING #1 -> ISTIO_INBOUND (+1) -> ISTIO_INBOUND #5 -> ISTIO_IN_REDIRECT (+1) -> ISTIO_IN_REDIRECT #1 REDIRECT --to-ports 15006 (+1): 10.244.1.6:80 goes to the sidecar\'s inbound listener 15006');
  t.equal(inboundCapture(movedBy({}), `${MTLS}:80`), undefined, 'nothing moved: no claim');
  t.equal(loopbackToApp(movedBy({ loopback: 1 }), '127.0.0.6:42000'),
    'the sidecar hands the request to the app over lo from 127.0.0.6; nat ISTIO_OUTPUT #2 -s 127.0.0.6/32 -o lo RETURN (+1): not captured again');
  t.match(loopbackToApp(movedBy({}), '127.0.0.6:42000', true), /a kept-alive connection/);
  // A pooled HBONE connection or a kept-alive one of the sidecar moved no counter during the trace.
  t.equal(inboundCapture(movedBy({}), `${MTLS}:15008`, true),
    'a kept-alive connection: nat ISTIO_INBOUND\'s --dport 15008 RETURN let its first packet through before the trace; HBONE is not redirected, it reaches the sidecar\'s own 15008 listener');
  t.match(inboundCapture(movedBy({}), `${MTLS}:15008`), /^nat PREROUTING -> ISTIO_INBOUND -> ISTIO_INBOUND --dport 15008 RETURN: /, 'no counter and not reused: one "nat"');
  t.match(proxyOwnConnection(movedBy({}), true), /^a kept-alive connection of the sidecar: nat ISTIO_OUTPUT's --uid-owner 1337 RETURN/);
  t.equal(proxyOwnConnection(movedBy({})), undefined, 'nothing moved, not reused: no claim');
  t.match(outboundRedirect(movedBy({ redirect: 1 })), /^nat OUTPUT -> ISTIO_OUTPUT -> ISTIO_OUTPUT #10 -> ISTIO_REDIRECT/, 'no OUTPUT counter: one "nat"');
});

const logs = parseLogLines([
  JSON.stringify({ time: 1, msg: 'connection complete', direction: 'outbound', 'src.addr': `${SC}:40000`, 'dst.addr': `${VIP}:8000`, via: 'http' }),
  JSON.stringify({ time: 2, msg: 'request', direction: 'outbound', method: 'GET', path: '/ip', authority: 'httpbin-mtls:8000', status: 200, response_code_details: 'via_upstream', upstream_host: `${MTLS}:80`, upstream_transport: 'istio-mtls', request_id: 'lab-trace-1' }),
  JSON.stringify({ time: 3, msg: 'connection complete', direction: 'inbound', 'src.addr': `${SC}:41000`, 'dst.addr': `${MTLS}:80`, 'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep-sc', 'dst.identity': 'spiffe://cluster.local/ns/default/sa/httpbin-mtls', via: 'mtls+http' }),
].join('\n'));

t.test('the sidecars\' lines: the address the app asked for, the transport, the Istio mTLS peers', async (t) => {
  t.equal(originalDestination(logs, `${SC}:40000`), `${VIP}:8000`);
  t.equal(originalDestination(logs, `${SC}:1`), undefined);
  const d = decisionFrom(logs[1], 'sidecar sleep-sc', 'p-sc')!;
  t.match(d, { direction: 'outbound', upstreamTransport: 'istio-mtls', upstreamHost: `${MTLS}:80`, localReply: false, requestId: 'lab-trace-1' });
  const lines = decisionLines({ ...d, leg: 1, afterHop: 1 });
  t.match(lines[0], /== sidecar sleep-sc decides \(outbound, for its app\): GET \/ip/);
  t.match(lines.join('\n'), /upstream: 10\.244\.1\.6:80, over Istio mTLS to that port/);
  t.match(decisionLines({ ...d, upstreamTransport: 'hbone 10.244.0.7:15008 (waypoint default/wp)', leg: 1, afterHop: 1 }).join('\n'), /over HBONE to 10\.244\.0\.7:15008 \(waypoint default\/wp\)/);
  t.same(tunnelFacts([{ where: 'sidecar httpbin-mtls', lines: logs }], { client: `${SC}:41000`, server: `${MTLS}:80`, istioMtls: true }), {
    source: ['sidecar httpbin-mtls log'], clientIdentity: 'spiffe://cluster.local/ns/default/sa/sleep-sc', serverIdentity: 'spiffe://cluster.local/ns/default/sa/httpbin-mtls',
  });
  t.equal(tunnelFacts([{ where: 'x', lines: logs }], { client: `${SC}:9`, server: `${MTLS}:80`, istioMtls: true }), undefined, 'another connection: nothing');
});
