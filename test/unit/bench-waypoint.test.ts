// The bench's waypoint section: the lab it generates (the waypoint serves exactly one of the
// two httpbins), how repeated runs are combined, the table, and the informational target row.
import t from 'tap';
import { parseTopology } from '../../src/topology/load.js';
import { planAddresses } from '../../src/topology/address-plan.js';
import { waypointTopologyYaml, WAYPOINT_BENCH } from '../../src/bench/waypoint-topology.js';
import { combineLatencyRuns } from '../../src/bench/stats.js';
import { renderWaypoint, renderTargets, renderReport } from '../../src/bench/format.js';
import { waypointRow, evaluateTargets } from '../../src/bench/targets.js';
import { fmtMet } from '../../src/bench/format-units.js';
import type { WaypointFigures, WaypointPathFigures } from '../../src/bench/waypoint.js';
import type { BenchReport } from '../../src/bench/report.js';
import type { Spread } from '../../src/bench/stats.js';

const one = (v: number): Spread => ({ median: v, min: v, max: v, n: 1 });
const three = (median: number, min: number, max: number): Spread => ({ median, min, max, n: 3 });

t.test('the generated lab: same client, two httpbins, the waypoint serves only one', (t) => {
  const topo = parseTopology(waypointTopologyYaml(), '/tmp/bench-wp.yaml');
  const plan = planAddresses(topo);
  const pod = (key: string) => plan.pods.find((p) => `${p.namespace}/${p.name}` === key)!;
  t.equal(topo.name, 'bench-wp');
  t.same(topo.resources?.waypoints.map((w) => [w.gateway, w.forServiceAccount, w.node]), [['httpbin-wp', 'httpbin-wp', 'node-a']]);
  t.match(pod(WAYPOINT_BENCH.waypointPod), { role: 'waypoint', node: 'node-a', mode: 'none' }, 'the waypoint pod the bench looks for');
  t.match(pod(WAYPOINT_BENCH.client), { node: 'node-a', app: 'sleep', mode: 'ambient' });
  const direct = pod(WAYPOINT_BENCH.direct.pod);
  const behind = pod(WAYPOINT_BENCH.waypoint.pod);
  t.match(direct, { node: 'node-b', app: 'httpbin', mode: 'ambient' });
  t.match(behind, { node: 'node-b', app: 'httpbin', mode: 'ambient', serviceAccount: 'httpbin-wp' });
  t.not(direct.serviceAccount, 'httpbin-wp', 'the direct httpbin is not in the waypoint\'s service account');
  for (const [svc, ip] of [[WAYPOINT_BENCH.direct.service, direct.ip], [WAYPOINT_BENCH.waypoint.service, behind.ip]]) {
    const s = plan.services.find((x) => `${x.namespace}/${x.name}` === svc)!;
    t.same(s.ports.map((p) => [p.name, p.port, p.targetPort]), [['http', 8000, 80]], `${svc}: a port named http, so the waypoint applies L7`);
    t.same(s.endpoints.map((e) => e.ip), [ip], `${svc} selects only its own httpbin`);
  }
  t.end();
});

t.test('repeated latency runs: median (min-max) of each p50 and p99, errors summed', (t) => {
  const c = combineLatencyRuns([{ p50: 2, p99: 9, errors: 0 }, { p50: 1, p99: 5, errors: 2, firstError: 'ECONNRESET' }, { p50: 3, p99: 7, errors: 1, firstError: 'timeout' }]);
  t.same(c, { p50: three(2, 1, 3), p99: three(7, 5, 9), errors: 3, firstError: 'ECONNRESET' });
  t.same(combineLatencyRuns([{ p50: 1, p99: 2, errors: 0 }]), { p50: one(1), p99: one(2), errors: 0 }, 'no firstError key without errors');
  t.equal(combineLatencyRuns([]).p50.n, 0);
  t.end();
});

function wpPath(service: string, newP50: number, keptP50: number, rps: number, errors = 0): WaypointPathFigures {
  return {
    service, target: service.endsWith('-wp') ? '10.96.0.12:8000' : '10.96.0.11:8000',
    newConnection: { p50: three(newP50, newP50 - 0.2, newP50 + 0.3), p99: one(newP50 * 4), errors },
    keepAlive: { p50: one(keptP50), p99: one(keptP50 * 5), errors: 0 },
    concurrent: { connections: 50, maxOpen: 50, errors: 0, droppedEarly: 0, requests: rps * 2, rps, p50: 15, p99: 59 },
  };
}
function figures(newWith: number, keptWith: number, errors = 0): WaypointFigures {
  return {
    lab: 'bench-wp-lab', tunnel: 'userspace', client: 'default/sleep',
    waypoint: { pod: 'default/httpbin-wp-istio-waypoint', process: 'waypoint/default/httpbin-wp-istio-waypoint', node: 'node-a', ip: '10.244.0.5' },
    direct: wpPath('default/httpbin', 3.59, 0.73, 2748),
    viaWaypoint: wpPath('default/httpbin-wp', newWith, keptWith, 730, errors),
    origins: { direct: '10.244.0.4', waypoint: '10.244.0.5' },
    waypointRequests: { counted: 1924, sent: 1924 },
    memory: { idleKb: 81000, peakKb: 99123, afterKb: 98000 },
    cpuMsPerRequest: 0.4921,
  };
}

t.test('the waypoint table: each figure without and with it, and the waypoint process', (t) => {
  const out = renderWaypoint(figures(3.85, 1.48));
  const line = (re: RegExp) => out.split('\n').find((l) => re.test(l)) ?? '';
  t.match(line(/^new connection p50/), /3\.59 \(3\.39-3\.89\) ms\s+3\.85 \(3\.65-4\.15\) ms\s+\+0\.26 ms$/);
  t.match(line(/^kept alive p50/), /0\.73 ms\s+1\.48 ms\s+\+0\.75 ms$/);
  t.match(line(/^kept alive p99/), /3\.65 ms\s+7\.40 ms\s+\+3\.75 ms$/);
  t.match(line(/^50 concurrent conns/), /2748 req\/s, 50 open, 0 err, p99 59 ms\s+730 req\/s.*\s+0\.27x$/);
  t.match(line(/^waypoint\/default\/httpbin-wp-istio-waypoint/), /79\.1 MB\s+96\.8 MB\s+95\.7 MB\s+0\.492 ms$/);
  t.match(out, /default\/sleep -> default\/httpbin \(10\.96\.0\.11:8000\): ambient, no waypoint; -> default\/httpbin-wp \(10\.96\.0\.12:8000\): through default\/httpbin-wp-istio-waypoint \(waypoint on node-a\)/);
  t.match(out, /httpbin saw 10\.244\.0\.5 \(the waypoint\) through it and 10\.244\.0\.4 \(the client\) without; the waypoint counted 1924 requests of the 1924 sent/);
  t.match(renderWaypoint(figures(3.85, 1.48, 4)), /^new connection p50\s+.*3\.85 \(3\.65-4\.15\) ms \[4 errors\]/m, 'failed requests are shown next to the p50');
  t.equal(renderWaypoint(undefined, 'lab up failed (exit 1): boom'), 'n/a: waypoint lab not available: lab up failed (exit 1): boom');
  t.end();
});

t.test('the waypoint target row is informational: reported, never a shouted NO', (t) => {
  t.equal(fmtMet(true, true), 'yes (informational)');
  t.equal(fmtMet(false, true), 'no (informational)');
  t.equal(fmtMet(undefined, true), 'n/a (informational)');

  const met = waypointRow({ waypoint: figures(3.85, 1.48) });
  t.same(met, { target: 'waypoint adds < 2 ms p50 per new request', measured: '+0.26 ms (3.85 vs 3.59 ms); kept alive +0.75 ms', met: true, informational: true });
  const slow = waypointRow({ waypoint: figures(6.1, 1.48) });
  t.equal(slow.met, false, '+2.51 ms is over 2 ms');
  const failing = waypointRow({ waypoint: figures(3.85, 1.48, 7) });
  t.equal(failing.met, false, 'failed requests through the waypoint fail the row');
  t.match(failing.measured, /; 7 failed requests through the waypoint$/);
  t.same(waypointRow({}), { target: 'waypoint adds < 2 ms p50 per new request', measured: 'n/a: not run (--skip)', informational: true });
  t.same(waypointRow({ waypointError: 'lab up failed' }).measured, 'n/a: waypoint lab not available');

  const rows = evaluateTargets({ lifecycle: [], growth: [], datapath: {}, waypoint: figures(6.1, 1.48) });
  t.equal(rows[rows.length - 1].target, 'waypoint adds < 2 ms p50 per new request', 'the last row of the target table');
  const table = renderTargets(rows).split('\n');
  t.match(table.find((l) => l.startsWith('waypoint adds')), /\+2\.51 ms \(6\.10 vs 3\.59 ms\); kept alive \+0\.75 ms\s+no \(informational\)$/);
  t.end();
});

t.test('the report prints the waypoint section, and leaves skipped parts out', (t) => {
  const r: BenchReport = {
    version: 1, date: '2026-11-27T15:48:36.433Z', quick: true,
    machine: { host: 'vm', kernel: '6.18.44', cpuModel: 'AMD EPYC', cores: 2, memoryMiB: 24106, node: 'v20.20.2', geneve: 'userspace', loadAvg: { start: 3.38, end: 4.26 } },
    options: { datapath: { latencyRequests: 100, latencyRuns: 2, bulkBytes: 2 ** 30, bulkMaxSeconds: 4, bulkRuns: 2, connections: 50, concurrentSeconds: 2 }, lifecycleReps: {} },
    lifecycle: [], growth: [], datapath: {}, waypoint: figures(3.85, 1.48), targets: [], durationS: 17,
  };
  r.targets = evaluateTargets(r);
  const out = renderReport(r);
  t.match(out, /## Waypoint: what it adds per request, same lab, same client/);
  t.notMatch(out, /## lab up \/ lab down/, 'lifecycle skipped: no empty table');
  t.notMatch(out, /## Data path/, 'data path skipped: no table of n/a');
  t.match(out, /waypoint adds < 2 ms p50 per new request\s+\+0\.26 ms/);
  t.same(r.targets.slice(0, -1).map((x) => x.measured), Array(17).fill('n/a: not run (--skip)'), 'skipped parts (the footprint too) are "not run", not "mesh not available"');
  const failed = renderReport({ ...r, waypoint: undefined, waypointError: 'requests to default/httpbin-wp did not go through the waypoint' });
  t.match(failed, /n\/a: waypoint lab not available: requests to default\/httpbin-wp did not go through the waypoint/);
  t.notMatch(renderReport({ ...r, waypoint: undefined }), /## Waypoint/, 'skipped: no section');
  t.end();
});
