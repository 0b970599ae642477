// A request through a waypoint, hand-built: sleep (node-a) -> reviews VIP, client ztunnel ->
// HBONE to the waypoint pod (node-a) -> the waypoint's L7 decision (its `request` log line) ->
// HBONE from the waypoint to reviews-v1:15008 (node-b) -> node-b's ztunnel -> the pod. While it
// runs the waypoint also opens a tunnel to reviews-v2 (another caller's request): the
// decision's upstream_host must pick v1. A denied request must end at the waypoint.
import t from 'tap';
import { observationsFrom, reconstruct, type NetnsFrames, type ProxyLogs } from '../../src/trace/hops.js';
import { LINKTYPE_LINUX_SLL2, type CapturedFrame } from '../../src/trace/pcap.js';
import {
  decisionFrom, matchDecision, parseBackendField, parseLogLines, parseRouteField, tunnelFacts, waypointIdentityFrom, type L7Decision,
} from '../../src/trace/proxy-logs.js';
import type { ObservationPoint } from '../../src/trace/roles.js';
import { renderHopTable } from '../../src/trace/render-table.js';
import { decisionWords, verdictShort } from '../../src/trace/render-svg.js';
import { applyWireFacts, parseWireFields } from '../../src/trace/wire-tunnels.js';
import type { TraceReport } from '../../src/trace/report.js';
import { ether, geneve, ipv4, sll2, tcp, udp, OUT, IN, SYN } from './trace-frames.js';

const SLEEP = '10.244.0.4';
const WP = '10.244.0.7';
const V1 = '10.244.1.3';
const V2 = '10.244.1.4';
const VIP = '10.96.0.11';
const WP_ID = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews-istio-waypoint';
const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';

const points: ObservationPoint[] = [
  { netns: 'p-sleep', role: 'pod', name: 'sleep', key: 'default/sleep', node: 'node-a', ip: SLEEP, interfaceNames: {} },
  { netns: 'n-a', role: 'node', name: 'node-a', key: 'node-a', node: 'node-a', interfaceNames: { vethS: 'veth-sleep', vethZ: 'veth-ztunnel', vethW: 'veth-wp-bookinfo-reviews' } },
  { netns: 'z-a', role: 'ztunnel', name: 'ztunnel-node-a', key: 'istio-system/ztunnel-node-a', node: 'node-a', ip: '10.244.0.2', interfaceNames: {} },
  { netns: 'w', role: 'waypoint', name: 'bookinfo-reviews-istio-waypoint', key: 'default/bookinfo-reviews-istio-waypoint', node: 'node-a', ip: WP, interfaceNames: {}, gateway: 'bookinfo-reviews' },
  { netns: 'u', role: 'underlay', name: 'underlay', key: 'underlay', interfaceNames: { unA: 'underlay-node-a', unB: 'underlay-node-b' } },
  { netns: 'n-b', role: 'node', name: 'node-b', key: 'node-b', node: 'node-b', interfaceNames: { vethZb: 'veth-ztunnel', vethV1: 'veth-reviews-v1', vethV2: 'veth-reviews-v2' } },
  { netns: 'z-b', role: 'ztunnel', name: 'ztunnel-node-b', key: 'istio-system/ztunnel-node-b', node: 'node-b', ip: '10.244.1.2', interfaceNames: {} },
  { netns: 'p-v1', role: 'pod', name: 'reviews-v1', key: 'default/reviews-v1', node: 'node-b', ip: V1, interfaceNames: {} },
  { netns: 'p-v2', role: 'pod', name: 'reviews-v2', key: 'default/reviews-v2', node: 'node-b', ip: V2, interfaceNames: {} },
];
const ifaces: Record<string, string[]> = {
  'p-sleep': ['lo', 'eth0'], 'n-a': ['lo', 'eth0', 'vethZ', 'vethS', 'vethW', 'istioin', 'istioout'], 'z-a': ['lo', 'eth0', 'pistioin', 'pistioout'],
  w: ['lo', 'eth0'], u: ['lo', 'br-underlay', 'unA', 'unB'], 'n-b': ['lo', 'eth0', 'vethZb', 'vethV1', 'vethV2', 'istioin', 'istioout'],
  'z-b': ['lo', 'eth0', 'pistioin', 'pistioout'], 'p-v1': ['lo', 'eth0'], 'p-v2': ['lo', 'eth0'],
};

// Times in ns since the epoch, so they compare with the logs' ms.
const T0 = 1_795_794_606_000_000_000n;
const at = (us: number): bigint => T0 + BigInt(us) * 1000n;
const ms = (us: number): number => Number(at(us) / 1_000_000n);

function build(withUpstream: boolean): NetnsFrames[] {
  const frames = new Map<string, CapturedFrame[]>();
  const seen = (netns: string, iface: string, dir: number, us: number, pkt: number[]): void => {
    const data = sll2(ifaces[netns].indexOf(iface) + 1, dir, pkt);
    const list = frames.get(netns) ?? [];
    list.push({ ts: at(us), linktype: LINKTYPE_LINUX_SLL2, data, origLen: data.length });
    frames.set(netns, list);
  };
  const gen = (vni: number, src: string, dst: string, inner: number[]): number[] => ipv4(src, dst, 7, 17, udp(33333, 6081, geneve(vni, ether(inner))));
  // 1: sleep -> VIP:9080, into ztunnel node-a through istioout.
  const syn1 = ipv4(SLEEP, VIP, 100, 6, tcp(47584, 9080, 1000, 0, SYN));
  seen('p-sleep', 'eth0', OUT, 10, syn1);
  seen('n-a', 'vethS', IN, 11, syn1);
  seen('n-a', 'istioout', OUT, 12, syn1);
  seen('n-a', 'vethZ', OUT, 13, gen(1001, '10.244.0.1', '10.244.0.2', syn1));
  seen('z-a', 'eth0', IN, 14, gen(1001, '10.244.0.1', '10.244.0.2', syn1));
  seen('z-a', 'pistioout', IN, 15, syn1);
  // 2: HBONE from ztunnel node-a (sleep's address) to the waypoint, same node, no tunnel.
  const syn2 = ipv4(SLEEP, WP, 200, 6, tcp(54808, 15008, 2000, 0, SYN));
  seen('z-a', 'eth0', OUT, 100, syn2);
  seen('n-a', 'vethZ', IN, 101, syn2);
  seen('n-a', 'vethW', OUT, 102, syn2);
  seen('w', 'eth0', IN, 103, syn2);
  // Another caller's request: the waypoint opens a tunnel to reviews-v2 first.
  const other = ipv4(WP, V2, 250, 6, tcp(41000, 15008, 2500, 0, SYN));
  seen('w', 'eth0', OUT, 150, other);
  seen('n-a', 'vethW', IN, 151, other);
  seen('n-a', 'eth0', OUT, 152, other);
  if (withUpstream) {
    // 3: the waypoint's own HBONE to reviews-v1:15008 on node-b, into istioin there.
    const syn3 = ipv4(WP, V1, 300, 6, tcp(35172, 15008, 3000, 0, SYN));
    seen('w', 'eth0', OUT, 300, syn3);
    seen('n-a', 'vethW', IN, 301, syn3);
    seen('n-a', 'eth0', OUT, 302, syn3);
    seen('u', 'unA', IN, 303, syn3);
    seen('u', 'unB', OUT, 304, syn3);
    seen('n-b', 'eth0', IN, 305, syn3);
    seen('n-b', 'istioin', OUT, 306, syn3);
    seen('n-b', 'vethZb', OUT, 307, gen(1000, '10.244.1.1', '10.244.1.2', syn3));
    seen('z-b', 'eth0', IN, 308, gen(1000, '10.244.1.1', '10.244.1.2', syn3));
    seen('z-b', 'pistioin', IN, 309, syn3);
    // 4: node-b's ztunnel to the pod, with the waypoint's address.
    const syn4 = ipv4(WP, V1, 400, 6, tcp(41376, 80, 4000, 0, SYN));
    seen('z-b', 'eth0', OUT, 400, syn4);
    seen('n-b', 'vethZb', IN, 401, syn4);
    seen('n-b', 'vethV1', OUT, 402, syn4);
    seen('p-v1', 'eth0', IN, 403, syn4);
  }
  return [...frames.entries()].map(([netns, f]) => ({ netns, frames: f, interfaces: new Map(ifaces[netns].map((n, i) => [i + 1, n])) }));
}

const WHERE = 'waypoint bookinfo-reviews';
const line = (o: Record<string, unknown>): string => JSON.stringify({ level: 30, name: 'waypoint', gateway: 'default/bookinfo-reviews', ...o });
const waypointLog = [
  line({ time: ms(0) - 60_000, instanceIp: WP, identity: WP_ID, msg: 'waypoint ready' }),
  // Someone else's GET of the same URL, long before the trace.
  line({ time: ms(0) - 30_000, method: 'GET', path: '/hostname', authority: 'reviews:9080', status: 200, response_flags: '-', response_code_details: 'via_upstream', 'src.addr': '10.244.0.5', route: 'VirtualService default/reviews http[1] rule 1', backend: 'reviews.default.svc.cluster.local:9080 subset v2 (10%)', upstream_host: `${V2}:80`, msg: 'request' }),
  line({ time: ms(500), method: 'GET', path: '/hostname', authority: 'reviews:9080', status: 200, response_flags: '-', response_code_details: 'via_upstream', 'src.addr': SLEEP, 'src.identity': SLEEP_ID, 'dst.service': 'reviews.default.svc.cluster.local:9080', route: 'VirtualService default/reviews http[1] rule 1', backend: 'reviews.default.svc.cluster.local:9080 subset v1 (90%)', upstream_cluster: 'inbound-vip|9080|http/v1|reviews.default.svc.cluster.local', upstream_host: `${V1}:80`, policy: 'AuthorizationPolicy default/reviews-viewer', attempts: 1, duration_ms: 26, msg: 'request' }),
  line({ time: ms(510), direction: 'inbound', 'src.addr': `${SLEEP}:54808`, 'src.identity': SLEEP_ID, 'dst.addr': `${VIP}:9080`, 'dst.hbone_addr': `${WP}:15008`, via: 'hbone+http', msg: 'connection complete' }),
  '{"torn line',
].join('\n');
const deniedLog = [
  line({ time: ms(0) - 60_000, instanceIp: WP, identity: WP_ID, msg: 'waypoint ready' }),
  line({ time: ms(500), method: 'POST', path: '/hostname', authority: 'reviews:9080', status: 403, response_flags: '-', response_code_details: 'rbac_access_denied', 'src.addr': SLEEP, 'src.identity': SLEEP_ID, attempts: 0, msg: 'request' }),
].join('\n');
const ztunnelLog = JSON.stringify({ level: 30, time: ms(520), name: 'ztunnel', direction: 'outbound', 'src.addr': `${SLEEP}:47584`, 'src.identity': SLEEP_ID, 'dst.addr': `${VIP}:9080`, 'dst.hbone_addr': `${WP}:15008`, 'dst.identity': WP_ID, via: 'hbone', msg: 'connection complete' });

function proxyLogs(wpText: string): ProxyLogs[] {
  const wl = parseLogLines(wpText);
  return [
    { netns: 'z-a', where: 'ztunnel node-a', lines: parseLogLines(ztunnelLog) },
    { netns: 'w', where: WHERE, lines: wl, identity: waypointIdentityFrom(wl)! },
  ];
}
const decisions = (text: string, fp: Parameters<typeof matchDecision>[1]): L7Decision[] => {
  const d = matchDecision(parseLogLines(text).flatMap((l) => decisionFrom(l, WHERE, 'w') ?? []), fp);
  return d ? [d] : [];
};
const window = { fromMs: ms(0) - 1000, toMs: ms(2000) };

t.test('log fields: route and backend', async (t) => {
  t.same(parseRouteField('VirtualService default/reviews http[1] rule 1'), { origin: 'VirtualService default/reviews http[1]', index: 1 });
  t.same(parseRouteField('default'), { origin: 'default', index: -1 });
  t.same(parseBackendField('reviews.default.svc.cluster.local:9080 subset v1 (90%)'), { host: 'reviews.default.svc.cluster.local', port: 9080, subset: 'v1', weightPercent: 90 });
  t.same(parseBackendField('httpbin.default.svc.cluster.local:8000 (100%)'), { host: 'httpbin.default.svc.cluster.local', port: 8000, weightPercent: 100 });
  t.equal(parseBackendField('nonsense'), undefined);
  t.equal(parseLogLines(waypointLog).length, 4, 'the torn line is skipped');
});

t.test('matching the trace\'s request: x-request-id exactly, else method, path and time window', async (t) => {
  const byTime = decisions(waypointLog, { method: 'GET', path: '/hostname', ...window });
  t.equal(byTime[0]?.sourceAddress, SLEEP, 'the line inside the window, not the earlier one of the same URL');
  t.same(decisions(waypointLog, { method: 'POST', path: '/hostname', ...window }), [], 'another method is another request');
  const withIds = [
    line({ time: ms(400), method: 'GET', path: '/hostname', status: 200, response_code_details: 'via_upstream', upstream_host: `${V2}:80`, request_id: 'someone-else', msg: 'request' }),
    line({ time: ms(450), method: 'GET', path: '/hostname', status: 200, response_code_details: 'via_upstream', upstream_host: `${V1}:80`, request_id: 'lab-trace-1', msg: 'request' }),
  ].join('\n');
  t.equal(decisions(withIds, { requestId: 'lab-trace-1', method: 'GET', path: '/hostname', ...window })[0]?.upstreamHost, `${V1}:80`, 'the id decides, not the time');
  t.same(decisions(withIds, { requestId: 'lab-trace-2', method: 'GET', path: '/hostname', ...window }), [], 'lines with other ids are other requests');
});

t.test('through a waypoint: hops in order, the decision after the waypoint hop, the upstream it named', async (t) => {
  const ds = decisions(waypointLog, { method: 'GET', path: '/hostname', ...window });
  const r = reconstruct(observationsFrom(build(true)), points, 'p-sleep', 9080, {
    decisions: ds, proxyLogs: proxyLogs(waypointLog), workloadIdentity: (ip) => (ip === V1 ? 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' : undefined),
  });
  t.same(r.hops.map((h) => `${h.where} ${h.interface}${h.vni ? ` vni ${h.vni}` : ''}`), [
    'pod sleep eth0', 'node node-a veth-sleep', 'node node-a istioout', 'node node-a veth-ztunnel vni 1001', 'ztunnel node-a eth0 vni 1001', 'ztunnel node-a pistioout',
    'ztunnel node-a eth0', 'node node-a veth-ztunnel', 'node node-a veth-wp-bookinfo-reviews', `${WHERE} eth0`,
    `${WHERE} eth0`, 'node node-a veth-wp-bookinfo-reviews', 'node node-a eth0', 'underlay underlay-node-a', 'underlay underlay-node-b', 'node node-b eth0',
    'node node-b istioin', 'node node-b veth-ztunnel vni 1000', 'ztunnel node-b eth0 vni 1000', 'ztunnel node-b pistioin',
    'ztunnel node-b eth0', 'node node-b veth-ztunnel', 'node node-b veth-reviews-v1', 'pod reviews-v1 eth0',
  ]);
  t.same(r.legs.map((l) => [l.client, l.server, l.encap, l.origin, l.delivered]), [
    [`${SLEEP}:47584`, `${VIP}:9080`, 'none', 'pod sleep', 'ztunnel node-a'],
    [`${SLEEP}:54808`, `${WP}:15008`, 'hbone', 'ztunnel node-a', WHERE],
    [`${WP}:35172`, `${V1}:15008`, 'hbone', WHERE, 'ztunnel node-b'],
    [`${WP}:41376`, `${V1}:80`, 'none', 'ztunnel node-b', 'pod reviews-v1'],
  ], 'the tunnel to v1 (upstream_host), not the earlier one to v2');
  t.equal(r.hops[9].what, 'arrives at the waypoint pod');
  t.ok(r.hops[9].delivered);
  t.equal(r.decisions.length, 1);
  t.match(r.decisions[0], {
    leg: 2, afterHop: 10, requestLine: 'GET /hostname', status: 200, localReply: false,
    route: { origin: 'VirtualService default/reviews http[1]', index: 1 },
    backend: { host: 'reviews.default.svc.cluster.local', port: 9080, subset: 'v1', weightPercent: 90 },
    upstreamHost: `${V1}:80`, sourceIdentity: SLEEP_ID,
  });
  t.same(r.legs[1].tunnel, {
    source: ['ztunnel node-a log', `${WHERE} log`],
    authority: `${VIP}:9080`, clientIdentity: SLEEP_ID, serverIdentity: WP_ID,
  }, 'the first tunnel: CONNECT to the Service VIP, sleep -> the waypoint');
  t.equal(r.legs[2].tunnel?.clientIdentity, WP_ID, 'the second tunnel carries the waypoint\'s own identity');
  t.equal(r.legs[2].tunnel?.serverIdentity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
  t.same(r.other.map((l) => l.server), [`${V2}:15008`], 'the other caller\'s tunnel is not on the path');

  const report: TraceReport = {
    lab: 'x', source: { pod: 'default/sleep', ip: SLEEP, netns: 'p-sleep' }, target: 'http://reviews:9080/hostname',
    request: { ok: true, summary: 'HTTP 200', durationMs: 5 }, startedAt: '', legs: r.legs, decisions: r.decisions,
    hops: r.hops.map(({ ts: _ts, route: _route, ...h }) => h), later: [], other: r.other, counters: [], notes: [],
  };
  const text = renderHopTable(report).split('\n');
  const at10 = text.findIndex((l) => /^10 {2}waypoint bookinfo-reviews/.test(l));
  t.match(text[at10 + 1], /== waypoint bookinfo-reviews decides: GET \/hostname \(Host reviews:9080\)/, 'the decision right after hop 10');
  t.match(text.join('\n'), /route: VirtualService default\/reviews http\[1\] \(rule 1\)\n\s+backend: reviews\.default\.svc\.cluster\.local:9080 subset v1, weight 90%\n\s+upstream: 10\.244\.1\.3:80/);
  t.match(text.join('\n'), new RegExp(`connection 3: .*\\n\\s+CONNECT \\(authority not seen\\), ${WP_ID} -> `));
  t.ok(text.findIndex((l) => /^11 /.test(l)) > at10 + 5, 'hop 11 after the decision');
  t.equal(verdictShort(r.decisions[0]), 'GET -> v1 (90%): 200');
  t.match(decisionWords(r.decisions[0]), /VirtualService default\/reviews http\[1\] \(rule 1\) matches; it picks .* subset v1 \(weight 90%\)/);
});

t.test('denied at the waypoint: its hop is the last, with the RBAC reason', async (t) => {
  const ds = decisions(deniedLog, { method: 'POST', path: '/hostname', ...window });
  t.match(ds[0], { status: 403, localReply: true, denial: 'RBAC: access denied (no ALLOW policy matched)' });
  // Even with a connection the waypoint opened afterwards in the capture (someone else's).
  const r = reconstruct(observationsFrom(build(true)), points, 'p-sleep', 9080, { decisions: ds, proxyLogs: proxyLogs(deniedLog) });
  t.equal(r.hops.at(-1)?.where, WHERE);
  t.equal(r.hops.at(-1)?.interface, 'eth0');
  t.same(r.legs.map((l) => l.server), [`${VIP}:9080`, `${WP}:15008`]);
  t.match(r.decisions, [{ afterHop: r.hops.length, status: 403, responseCodeDetails: 'rbac_access_denied' }]);
  t.equal(verdictShort(r.decisions[0]), 'POST /hostname: 403 RBAC');
  // Without the decision, the engine would have followed the waypoint's next connection.
  const blind = reconstruct(observationsFrom(build(true)), points, 'p-sleep', 9080);
  t.ok(blind.legs.length > 2, 'without the log, the path does not stop at the waypoint');
});

t.test('tunnelFacts: the receiver matches the exact peer, the opener only the IP and original destination', async (t) => {
  const logs = proxyLogs(waypointLog);
  t.equal(tunnelFacts(logs, { client: `${SLEEP}:1`, server: `${WP}:15008`, originalDst: `${VIP}:9999` }), undefined, 'another port of the VIP: another connection');
  t.same(tunnelFacts(logs, { client: `${SLEEP}:1`, server: `${WP}:15008`, originalDst: `${VIP}:9080` })?.source, ['ztunnel node-a log']);
});

t.test('the wire overrides the logs: certificates and CONNECT decrypted by tshark', async (t) => {
  // What `tshark -T fields -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e x509ce.uniformResourceIdentifier -e http2.headers.authority` prints.
  const fields = [
    `${WP}\t35172\t${V1}\t15008\t${WP_ID}\t`,
    `${WP}\t35172\t${V1}\t15008\t${WP_ID}\t`,
    `${V1}\t15008\t${WP}\t35172\tspiffe://cluster.local/ns/default/sa/bookinfo-reviews,\t`,
    `${WP}\t35172\t${V1}\t15008\t\t${V1}:80`,
    `${WP}\t35172\t${V1}\t15008\t\t${V1}:8080`,
    'garbage',
  ].join('\n');
  const wire = parseWireFields(fields);
  t.same([...wire.identities], [[`${WP}:35172>${V1}:15008`, WP_ID], [`${V1}:15008>${WP}:35172`, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews']]);
  t.same([...wire.authorities], [[`${WP}:35172>${V1}:15008`, `${V1}:80`]], 'the first CONNECT of the tunnel');
  const legs = [
    { id: 3, proto: 'tcp', client: `${WP}:35172`, server: `${V1}:15008`, encap: 'hbone' as const, origin: WHERE, delivered: 'ztunnel node-b', packets: 9, reused: false,
      tunnel: { clientIdentity: 'spiffe://wrong', source: [`${WHERE}'s own identity`] } },
    { id: 4, proto: 'tcp', client: `${WP}:41376`, server: `${V1}:80`, encap: 'none' as const, origin: 'ztunnel node-b', delivered: 'pod reviews-v1', packets: 3, reused: false },
  ];
  applyWireFacts(legs, wire);
  t.same(legs[0].tunnel, { clientIdentity: WP_ID, serverIdentity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews', authority: `${V1}:80`, source: ['the wire (decrypted with the key log)'] });
  t.notOk('tunnel' in legs[1], 'plain TCP legs are left alone');
});
