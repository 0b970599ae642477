// The bench's comparison section: the lab it generates (each mode's pods in the mode they
// claim), which proxy memory a pod is charged with, the sidecar log check, and the table.
import t from 'tap';
import { parseTopology } from '../../src/topology/load.js';
import { planAddresses } from '../../src/topology/address-plan.js';
import { compareTopologyYaml, COMPARE_MODES, COMPARE_WAYPOINT, modeSpec } from '../../src/bench/compare-topology.js';
import { attributeMemory, type LabPod, type ProxyRss } from '../../src/bench/compare-memory.js';
import { lastTransport } from '../../src/bench/compare.js';
import { figures } from './bench-compare-fixture.js';
import { renderCompare, compareTableRows, COMPARE_HEADERS } from '../../src/bench/compare-format.js';

t.test('the generated lab: every mode\'s client and server in the mode it names', (t) => {
  for (const sameNode of [false, true]) {
    const topo = parseTopology(compareTopologyYaml('bench-cmp', sameNode), '/tmp/bench-cmp.yaml');
    const plan = planAddresses(topo);
    const pod = (name: string) => plan.pods.find((p) => p.namespace === 'default' && p.name === name)!;
    t.same(topo.resources?.waypoints.map((w) => [w.gateway, w.forServiceAccount, w.node]), [[COMPARE_WAYPOINT.gateway, COMPARE_WAYPOINT.serviceAccount, 'node-a']]);
    t.match(pod(COMPARE_WAYPOINT.pod), { role: 'waypoint' }, 'the waypoint pod the section looks for');
    for (const s of COMPARE_MODES) {
      for (const placement of sameNode ? (['cross-node', 'same-node'] as const) : (['cross-node'] as const)) {
        const c = pod(s.client[placement]);
        t.match(c, { app: 'sleep', mode: s.podMode, node: placement === 'cross-node' ? 'node-a' : 'node-b' }, `${s.label} ${placement}: client ${c.name}`);
      }
      t.match(pod(s.server), { app: 'httpbin', mode: s.podMode, node: 'node-b' }, `${s.label}: server ${s.server}`);
      t.ok(topo.services.some((x) => x.name === s.server && x.ports[0].port === 8000), `a Service ${s.server}:8000`);
    }
    t.equal(pod('httpbin-wp').serviceAccount, COMPARE_WAYPOINT.serviceAccount, 'only httpbin-wp is behind the waypoint');
    t.equal(pod('httpbin-mtls').hbone, false, 'the Istio mTLS sidecar has hbone: false');
    t.not(pod('httpbin-sc').hbone, false, 'the HBONE sidecar keeps the default');
    t.equal(sameNode, !!plan.pods.find((p) => p.name === 'sleep-b'), 'same-node clients only when asked');
  }
  t.end();
});

const pods: LabPod[] = [
  { name: 'default/sleep', node: 'node-a', mode: 'ambient', role: 'workload' },
  { name: 'default/sleep-sc', node: 'node-a', mode: 'sidecar', role: 'workload' },
  { name: 'default/sleep-plain', node: 'node-a', mode: 'none', role: 'workload' },
  { name: 'default/httpbin', node: 'node-b', mode: 'ambient', role: 'workload' },
  { name: 'default/httpbin-wp', node: 'node-b', mode: 'ambient', role: 'workload' },
  { name: 'default/httpbin-sc', node: 'node-b', mode: 'sidecar', role: 'workload' },
  { name: 'default/httpbin-wp-istio-waypoint', node: 'node-a', mode: 'none', role: 'waypoint' },
];
const proxies: ProxyRss[] = [
  { id: 'ztunnel/node-a', role: 'ztunnel', node: 'node-a', kb: 60_000 },
  { id: 'ztunnel/node-b', role: 'ztunnel', node: 'node-b', kb: 80_000 },
  { id: 'waypoint/default/httpbin-wp-istio-waypoint', role: 'waypoint', pod: 'default/httpbin-wp-istio-waypoint', node: 'node-a', kb: 70_000 },
  { id: 'sidecar/default/sleep-sc', role: 'sidecar', pod: 'default/sleep-sc', kb: 50_000 },
  { id: 'sidecar/default/httpbin-sc', role: 'sidecar', pod: 'default/httpbin-sc', kb: 54_000 },
];

t.test('memory per pod: own sidecar, a share of the node\'s ztunnel, a share of the waypoint', (t) => {
  const none = attributeMemory(modeSpec('none'), 'default/sleep-plain', 'default/httpbin-plain', [...pods, { name: 'default/httpbin-plain', node: 'node-b', mode: 'none', role: 'workload' }], proxies);
  t.same(none, { perPodKb: 0, pathKb: 0, parts: [] }, 'no proxy, no memory');
  const amb = attributeMemory(modeSpec('ambient'), 'default/sleep', 'default/httpbin', pods, proxies);
  // sleep: ztunnel/node-a alone (1 ambient pod there); httpbin: half of ztunnel/node-b (2 there).
  t.equal(amb.perPodKb, (60_000 / 1 + 80_000 / 2) / 2);
  t.equal(amb.pathKb, 140_000, 'both ztunnels, whole');
  t.same(amb.parts.map((p) => [p.id, p.sharedBy]), [['ztunnel/node-a', 1], ['ztunnel/node-b', 2]]);
  const wp = attributeMemory(modeSpec('waypoint'), 'default/sleep', 'default/httpbin-wp', pods, proxies);
  t.equal(wp.perPodKb, (60_000 + 80_000 / 2 + 70_000) / 2, 'the server also pays the waypoint of its service account');
  t.equal(wp.pathKb, 210_000);
  const sc = attributeMemory(modeSpec('sidecar'), 'default/sleep-sc', 'default/httpbin-sc', pods, proxies);
  t.equal(sc.perPodKb, 52_000, 'each pod its own sidecar');
  t.equal(sc.pathKb, 104_000);
  t.throws(() => attributeMemory(modeSpec('sidecar'), 'default/sleep-sc', 'default/httpbin-mtls', pods, proxies), /no memory figure for sidecar\/default\/httpbin-mtls/);
  t.end();
});

t.test('the sidecar log says how it reached the server', (t) => {
  const log = [
    '{"level":30,"msg":"request","dst.service":"httpbin-sc.default.svc.cluster.local","upstream_transport":"hbone 10.244.1.5:15008"}',
    '{"level":30,"msg":"request","dst.service":"httpbin-mtls.default.svc.cluster.local","upstream_transport":"istio-mtls"}',
    '{"level":30,"msg":"request","dst.service":"httpbin-sc.default',
  ].join('\n');
  t.equal(lastTransport(log, 'httpbin-sc'), 'hbone 10.244.1.5:15008', 'a partial last line is skipped');
  t.equal(lastTransport(log, 'httpbin-mtls'), 'istio-mtls');
  t.equal(lastTransport(log, 'web'), undefined);
  t.end();
});

t.test('the table: one row per mode, the comparisons the talk asks for', (t) => {
  const rows = compareTableRows(figures.rows);
  t.equal(rows.length, 5);
  t.equal(rows[0].length, COMPARE_HEADERS.length);
  t.same(rows.map((r) => r[0]), ['none', 'ambient', 'ambient + waypoint', 'sidecar (HBONE)', 'sidecar (Istio mTLS)']);
  t.same(rows[2].slice(2, 4), ['2.90 ms', '8.70 ms']);
  t.equal(rows[2][8], '1.40 s', 'CPU seconds per 1,000 requests');
  t.equal(rows[1][9], '68.4 MB', 'proxy memory per pod');
  t.equal(rows[2][11], '2', 'errors counted');
  const out = renderCompare(figures);
  t.match(out, 'sidecar (HBONE) vs sidecar (Istio mTLS) (cross-node): new connection p50 +0.30 ms');
  t.match(out, 'sidecar (HBONE) vs ambient (cross-node): new connection p50 +0.90 ms, kept alive p50 +0.45 ms, one stream 0.60x');
  t.match(out, 'ambient pods per node: node-a 1, node-b 2');
  t.match(renderCompare(undefined, 'lab up failed'), 'n/a: comparison lab not available: lab up failed');
  t.end();
});
