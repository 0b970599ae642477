// Hop reconstruction on a hand-built ambient cross-node request: captures from nine
// namespaces, given out of order, must come back as the ten-step path of the talk,
// with the later packets of the client connection bypassing the tunnel (table 102).
import t from 'tap';
import { buildJourneys, observationsFrom, reconstruct, type NetnsFrames } from '../../src/trace/hops.js';
import { LINKTYPE_LINUX_SLL2, type CapturedFrame } from '../../src/trace/pcap.js';
import type { ObservationPoint } from '../../src/trace/roles.js';
import { ether, geneve, ipv4, sll2, tcp, udp, OUT, IN, SYN, ACK } from './trace-frames.js';

const SLEEP = '10.244.0.4';
const HTTPBIN = '10.244.1.3';
const VIP = '10.96.0.11';

const points: ObservationPoint[] = [
  { netns: 'p-sleep', role: 'pod', name: 'sleep', key: 'default/sleep', node: 'node-a', ip: SLEEP, interfaceNames: {} },
  { netns: 'n-a', role: 'node', name: 'node-a', key: 'node-a', node: 'node-a', interfaceNames: { vethS: 'veth-sleep', vethZ: 'veth-ztunnel' } },
  { netns: 'z-a', role: 'ztunnel', name: 'ztunnel-node-a', key: 'istio-system/ztunnel-node-a', node: 'node-a', ip: '10.244.0.2', interfaceNames: {} },
  { netns: 'u', role: 'underlay', name: 'underlay', key: 'underlay', interfaceNames: { unA: 'underlay-node-a', unB: 'underlay-node-b' } },
  { netns: 'n-b', role: 'node', name: 'node-b', key: 'node-b', node: 'node-b', interfaceNames: { vethZb: 'veth-ztunnel', vethH: 'veth-httpbin' } },
  { netns: 'z-b', role: 'ztunnel', name: 'ztunnel-node-b', key: 'istio-system/ztunnel-node-b', node: 'node-b', ip: '10.244.1.2', interfaceNames: {} },
  { netns: 'p-httpbin', role: 'pod', name: 'httpbin', key: 'default/httpbin', node: 'node-b', ip: HTTPBIN, interfaceNames: {} },
];

const ifaces: Record<string, string[]> = {
  'p-sleep': ['lo', 'eth0'], 'n-a': ['lo', 'eth0', 'vethZ', 'vethS', 'istioin', 'istioout'], 'z-a': ['lo', 'eth0', 'pistioin', 'pistioout'],
  u: ['lo', 'br-underlay', 'unA', 'unB'], 'n-b': ['lo', 'eth0', 'vethZb', 'vethH', 'istioin', 'istioout'], 'z-b': ['lo', 'eth0', 'pistioin', 'pistioout'],
  'p-httpbin': ['lo', 'eth0'],
};
const frames = new Map<string, CapturedFrame[]>();
function seen(netns: string, iface: string, dir: number, ts: number, pkt: number[]): void {
  const ifindex = ifaces[netns].indexOf(iface) + 1;
  const data = sll2(ifindex, dir, pkt);
  const list = frames.get(netns) ?? [];
  list.push({ ts: BigInt(ts), linktype: LINKTYPE_LINUX_SLL2, data, origLen: data.length });
  frames.set(netns, list);
}
const gen = (vni: number, src: string, dst: string, inner: number[]): number[] => ipv4(src, dst, 7, 17, udp(33333, 6081, geneve(vni, ether(inner))));

// Leg 1: sleep -> VIP:8000, SYN through istioout / Geneve 1001 / pistioout.
const syn1 = ipv4(SLEEP, VIP, 100, 6, tcp(43122, 8000, 1000, 0, SYN));
seen('p-sleep', 'eth0', OUT, 10, syn1);
seen('n-a', 'vethS', IN, 10, syn1); // same nanosecond as the send: the sender goes first
seen('n-a', 'istioout', OUT, 30, syn1);
seen('n-a', 'vethZ', OUT, 40, gen(1001, '10.244.0.1', '10.244.0.2', syn1));
seen('z-a', 'eth0', IN, 50, gen(1001, '10.244.0.1', '10.244.0.2', syn1));
seen('z-a', 'pistioout', IN, 60, syn1);
// ztunnel's SYN-ACK, spoofing the VIP, straight over the ztunnel veth.
const synack1 = ipv4(VIP, SLEEP, 0, 6, tcp(8000, 43122, 5000, 1001, SYN | ACK));
seen('z-a', 'eth0', OUT, 70, synack1);
seen('n-a', 'vethZ', IN, 80, synack1);
seen('n-a', 'vethS', OUT, 90, synack1);
seen('p-sleep', 'eth0', IN, 100, synack1);
// The client's ACK: mark 0x040, table 102, on the ztunnel veth without Geneve.
const ack1 = ipv4(SLEEP, VIP, 101, 6, tcp(43122, 8000, 1001, 5001, ACK));
seen('p-sleep', 'eth0', OUT, 110, ack1);
seen('n-a', 'vethS', IN, 120, ack1);
seen('n-a', 'vethZ', OUT, 130, ack1);
seen('z-a', 'eth0', IN, 140, ack1);
// Leg 2: HBONE from ztunnel node-a (spoofing the sleep IP) to httpbin:15008.
const syn2 = ipv4(SLEEP, HTTPBIN, 200, 6, tcp(51234, 15008, 2000, 0, SYN));
seen('z-a', 'eth0', OUT, 200, syn2);
seen('n-a', 'vethZ', IN, 210, syn2);
seen('n-a', 'eth0', OUT, 220, syn2);
seen('u', 'unA', IN, 230, syn2);
seen('u', 'unB', OUT, 240, syn2);
seen('n-b', 'eth0', IN, 250, syn2);
seen('n-b', 'istioin', OUT, 260, syn2);
seen('n-b', 'vethZb', OUT, 270, gen(1000, '10.244.1.1', '10.244.1.2', syn2));
seen('z-b', 'eth0', IN, 280, gen(1000, '10.244.1.1', '10.244.1.2', syn2));
seen('z-b', 'pistioin', IN, 290, syn2);
// Leg 3: ztunnel node-b to the httpbin pod.
const syn3 = ipv4(SLEEP, HTTPBIN, 300, 6, tcp(40000, 80, 3000, 0, SYN));
seen('z-b', 'eth0', OUT, 400, syn3);
seen('n-b', 'vethZb', IN, 410, syn3);
seen('n-b', 'vethH', OUT, 420, syn3);
seen('p-httpbin', 'eth0', IN, 430, syn3);
// Noise: a DNS query before the request, and a retransmission of the first SYN much later.
seen('p-sleep', 'eth0', OUT, 5, ipv4(SLEEP, '10.96.0.10', 55, 17, udp(5353, 53, [1, 2, 3])));
seen('p-sleep', 'eth0', OUT, 5000, syn1);
seen('n-a', 'vethS', IN, 5010, syn1);

function captures(): NetnsFrames[] {
  // Reverse the order of namespaces and frames: the engine must not rely on capture order.
  return [...frames.entries()].reverse().map(([netns, f]) => ({
    netns, frames: [...f].reverse(), interfaces: new Map(ifaces[netns].map((n, i) => [i + 1, n])),
  }));
}

t.test('ambient cross-node: the first packet of each connection, hop by hop, in order', async (t) => {
  const r = reconstruct(observationsFrom(captures()), points, 'p-sleep', 8000);
  t.same(r.hops.map((h) => `${h.where} ${h.interface}${h.vni ? ` vni ${h.vni}` : ''}`), [
    'pod sleep eth0',
    'node node-a veth-sleep',
    'node node-a istioout',
    'node node-a veth-ztunnel vni 1001',
    'ztunnel node-a eth0 vni 1001',
    'ztunnel node-a pistioout',
    'ztunnel node-a eth0',
    'node node-a veth-ztunnel',
    'node node-a eth0',
    'underlay underlay-node-a',
    'underlay underlay-node-b',
    'node node-b eth0',
    'node node-b istioin',
    'node node-b veth-ztunnel vni 1000',
    'ztunnel node-b eth0 vni 1000',
    'ztunnel node-b pistioin',
    'ztunnel node-b eth0',
    'node node-b veth-ztunnel',
    'node node-b veth-httpbin',
    'pod httpbin eth0',
  ]);
  t.same(r.hops.map((h) => h.index), r.hops.map((_, i) => i + 1));
  t.same(r.legs.map((l) => [l.client, l.server, l.encap, l.origin, l.delivered]), [
    [`${SLEEP}:43122`, `${VIP}:8000`, 'none', 'pod sleep', 'ztunnel node-a'],
    [`${SLEEP}:51234`, `${HTTPBIN}:15008`, 'hbone', 'ztunnel node-a', 'ztunnel node-b'],
    [`${SLEEP}:40000`, `${HTTPBIN}:80`, 'none', 'ztunnel node-b', 'pod httpbin'],
  ]);
  t.equal(r.hops[0].what, `${SLEEP}:43122 -> ${VIP}:8000  TCP SYN`);
  t.equal(r.hops[3].what, 'Geneve VNI 1001 (outer 10.244.0.1 -> 10.244.0.2:6081)');
  t.same({ encap: r.hops[3].encap, outer: r.hops[3].outer, src: r.hops[3].src, dst: r.hops[3].dst },
    { encap: 'geneve', outer: { src: '10.244.0.1:33333', dst: '10.244.0.2:6081' }, src: `${SLEEP}:43122`, dst: `${VIP}:8000` });
  t.match(r.hops[6].what, /^HBONE 10\.244\.0\.4:51234 -> 10\.244\.1\.3:15008  TCP SYN/);
  t.equal(r.hops[6].encap, 'hbone');
  t.same(r.hops[2].route, { netns: 'n-a', src: SLEEP, dst: VIP, iif: 'vethS', oif: 'istioout', proto: 'tcp' }, 'the turn into istioout is a routing decision to explain');
  t.equal(r.hops[3].route, undefined, 'the Geneve wrap is not a routing decision');
  t.ok(r.hops[5].delivered, 'the SYN ends at pistioout (TPROXY)');
  t.ok(r.hops[19].delivered);
  t.same(r.other.map((l) => l.server), ['10.96.0.10:53'], 'DNS is reported apart from the request');
});

t.test('later packets: the client ACK bypasses the tunnel over the ztunnel veth', async (t) => {
  const r = reconstruct(observationsFrom(captures()), points, 'p-sleep', 8000);
  const path = (g: (typeof r.later)[number]): string => g.hops.map((h) => `${h.where}:${h.interface}${h.vni ? `/${h.vni}` : ''}`).join(' > ');
  const reply = r.later.find((g) => g.leg === 1 && g.direction === 'reply');
  t.same(reply?.flags, ['SYN,ACK']);
  t.equal(reply && path(reply), 'ztunnel node-a:eth0 > node node-a:veth-ztunnel > node node-a:veth-sleep > pod sleep:eth0');
  const acks = r.later.filter((g) => g.leg === 1 && g.direction === 'request' && g.flags.includes('ACK'));
  t.equal(acks.length, 1);
  t.equal(path(acks[0]), 'pod sleep:eth0 > node node-a:veth-sleep > node node-a:veth-ztunnel > ztunnel node-a:eth0', 'no istioout, no Geneve');
  t.same(acks[0].hops[2].route, { netns: 'n-a', src: SLEEP, dst: VIP, iif: 'vethS', oif: 'vethZ', proto: 'tcp' });
  const retrans = r.later.find((g) => g.leg === 1 && g.flags.includes('SYN') && g.direction === 'request');
  t.equal(retrans?.hops.length, 2, 'a retransmitted SYN is its own journey, not folded into the first');
});

t.test('journeys: a packet seen twice at the same point splits; equal timestamps put the sender first', async (t) => {
  const js = buildJourneys(observationsFrom(captures()));
  const firstSyn = js.filter((j) => j.obs[0].inner.id === 100);
  t.equal(firstSyn.length, 2);
  t.same(firstSyn[0].obs.slice(0, 2).map((o) => `${o.netns}:${o.dir}`), ['p-sleep:out', 'n-a:in']);
});

t.test('no SYN from the source pod: no hops, nothing invented', async (t) => {
  const r = reconstruct(observationsFrom(captures()), points, 'p-httpbin');
  t.same(r.hops, []);
  t.same(r.legs, []);
});

t.test('a pooled HBONE connection (no SYN in the trace) still links the two ztunnels', async (t) => {
  const pooled = captures().map((c) => ({
    ...c,
    // Drop the HBONE SYN: the tunnel was opened by an earlier request.
    frames: c.frames.filter((f) => !(f.data.length > 40 && f.data[20 + 4] === 0 && f.data[20 + 5] === 200)),
  }));
  const data = ipv4(SLEEP, HTTPBIN, 250, 6, tcp(51000, 15008, 9000, 7000, ACK | 0x08, new Array(100).fill(0x17)));
  const extra: Array<[string, string, number, number]> = [['z-a', 'eth0', OUT, 200], ['n-a', 'vethZ', IN, 210], ['n-a', 'eth0', OUT, 220], ['u', 'unA', IN, 230], ['u', 'unB', OUT, 240], ['n-b', 'eth0', IN, 250], ['n-b', 'vethZb', OUT, 260], ['z-b', 'eth0', IN, 270]];
  for (const [ns, ifn, dir, ts] of extra) {
    const c = pooled.find((x) => x.netns === ns)!;
    const idx = [...c.interfaces].find(([, n]) => n === ifn)![0];
    const d = sll2(idx, dir, data);
    c.frames.push({ ts: BigInt(ts), linktype: LINKTYPE_LINUX_SLL2, data: d, origLen: d.length });
  }
  const r = reconstruct(observationsFrom(pooled), points, 'p-sleep', 8000);
  t.same(r.legs.map((l) => [l.server, l.reused, l.origin, l.delivered]), [
    [`${VIP}:8000`, false, 'pod sleep', 'ztunnel node-a'],
    [`${HTTPBIN}:15008`, true, 'ztunnel node-a', 'ztunnel node-b'],
    [`${HTTPBIN}:80`, false, 'ztunnel node-b', 'pod httpbin'],
  ]);
  const hb = r.hops.filter((h) => h.leg === 2);
  t.equal(hb.length, 8);
  t.match(hb[0].what, /^HBONE 10\.244\.0\.4:51000 -> 10\.244\.1\.3:15008  TCP PSH,ACK, 100 bytes/);
  t.same(r.hops.filter((h) => h.leg === 3).map((h) => h.interface), ['eth0', 'veth-ztunnel', 'veth-httpbin', 'eth0']);
});
