// The hop breakdown of a new connection from `lab trace --json` (a warm trace of sleep ->
// httpbin in the bench's lab, as captured): every gap between two hops charged to the kernel
// path, the Geneve hops or the proxy that took the previous leg in; medians over runs.
import t from 'tap';
import { hopBreakdown, combineBreakdowns, type TraceHop, type TraceLegInfo } from '../../src/bench/compare-hops.js';
import { renderHops } from '../../src/bench/compare-format.js';

const raw: Array<[number, string, string, string, number, string]> = [[1, 'pod', 'sleep', 'eth0', 0, 'none'], [1, 'node', 'node-a', 'veth-sleep', 5, 'none'],
  [1, 'node', 'node-a', 'istioout', 28, 'none'], [1, 'node', 'node-a', 'veth-ztunnel', 164, 'geneve'], [1, 'ztunnel', 'ztunnel-node-a', 'eth0', 168, 'geneve'],
  [1, 'ztunnel', 'ztunnel-node-a', 'pistioout', 285, 'none'], [2, 'ztunnel', 'ztunnel-node-a', 'eth0', 1476, 'hbone'], [2, 'node', 'node-a', 'veth-ztunnel', 1506, 'hbone'],
  [2, 'node', 'node-a', 'eth0', 1519, 'hbone'], [2, 'underlay', 'underlay', 'underlay-node-a', 1524, 'hbone'], [2, 'underlay', 'underlay', 'underlay-node-b', 1550, 'hbone'],
  [2, 'node', 'node-b', 'eth0', 1554, 'hbone'], [2, 'node', 'node-b', 'veth-ztunnel', 1572, 'hbone'], [2, 'ztunnel', 'ztunnel-node-b', 'eth0', 1576, 'hbone'],
  [3, 'ztunnel', 'ztunnel-node-b', 'eth0', 2609, 'none'], [3, 'node', 'node-b', 'veth-ztunnel', 2656, 'none'], [3, 'node', 'node-b', 'veth-httpbin', 2684, 'none'],
  [3, 'pod', 'httpbin', 'eth0', 2689, 'none']];
const hops: TraceHop[] = raw.map(([leg, role, name, iface, tUs, encap], i) => ({ index: i + 1, leg, role, name, interface: iface, tUs, encap }));
const legs: TraceLegInfo[] = [
  { id: 1, encap: 'none', origin: 'pod sleep', delivered: 'ztunnel node-a' },
  { id: 2, encap: 'hbone', origin: 'ztunnel node-a', delivered: 'ztunnel node-b' },
  { id: 3, encap: 'none', origin: 'ztunnel node-b', delivered: 'pod httpbin' },
];

t.test('each gap goes to the kernel path, the Geneve hops or the proxy between two legs', (t) => {
  const b = hopBreakdown(hops, legs);
  t.same(b.segments, [
    { what: 'kernel path', us: 5 + 100 + 80 },
    { what: 'Geneve hops', us: 23 + 136 + 4 + 117 },
    { what: 'in ztunnel node-a', us: 1476 - 285 },
    { what: 'in ztunnel node-b', us: 2609 - 1576 },
  ]);
  t.equal(b.totalUs, 2689);
  t.equal(b.segments.reduce((a, s) => a + s.us, 0), b.totalUs, 'the segments add up to the whole');
  t.same(hopBreakdown([], []), { segments: [], totalUs: 0 });
  t.end();
});

t.test('runs combine by median per segment; a segment missing in a run counts 0', (t) => {
  const c = combineBreakdowns([
    { segments: [{ what: 'kernel path', us: 100 }, { what: 'in ztunnel node-a', us: 1000 }], totalUs: 1100 },
    { segments: [{ what: 'kernel path', us: 300 }, { what: 'in ztunnel node-a', us: 3000 }], totalUs: 3300 },
    { segments: [{ what: 'kernel path', us: 200 }], totalUs: 200 },
  ]);
  t.same(c, { segments: [{ what: 'kernel path', us: 200 }, { what: 'in ztunnel node-a', us: 1000 }], totalUs: 1100 });
  t.end();
});

t.test('the table: cold and warm side by side', (t) => {
  const b = hopBreakdown(hops, legs);
  const out = renderHops({ lab: 'bench-cmp-hops', paths: [{ path: 'direct', target: 'http://httpbin:8000/status/200', cold: b, warm: { runs: 5, ...b } }] });
  t.match(out, 'sleep -> httpbin (ztunnel pair): http://httpbin:8000/status/200');
  t.match(out, /in ztunnel node-a +1\.19 ms +1\.19 ms/);
  t.match(out, /client SYN -> server SYN +2\.69 ms +2\.69 ms/);
  t.match(renderHops(undefined, 'trace failed'), 'n/a: hop breakdown not available: trace failed');
  t.end();
});
