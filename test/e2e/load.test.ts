// Load on the proxies, the fast variant of the bench's load section (src/bench/load-1k.ts):
// 1,000 concurrent connections once and 2,000 short requests, from one pod through one
// ztunnel pair and through a waypoint, real namespaces and real processes. What must hold:
// every connection the client opened was counted by the client's ztunnel, the proxies' fds
// stay bounded under the load and return near their idle count within SETTLE_MS after it
// (the waypoint's idle upstream connections and the burst's surplus HBONE sessions are
// reaped, not left for the next traffic), every client error
// is also in a proxy's log, and each proxy exports its event-loop delay. The waypoint's upstream
// pool gauges (envoy_cluster_upstream_*_active on :15020) stay under the per-endpoint bound under
// the load and its open upstream connections fall to 0 within the settle window. The same load
// from a sidecar pod to a sidecar pod (a second, small lab: the bench topology has no sidecar)
// checks both sidecar proxies the same way: gauges bounded, cx_active 0 and fds back near idle.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab } from './helpers.js';
import { measureLoad, fdCount, FD_SLACK, FD_SETTLE_SLACK, type LoadFigures } from '../../src/bench/load-1k.js';
import { labUp, labDown, labStatus } from '../../src/bench/lab-cli.js';
import { runLoadClient } from '../../src/bench/datapath.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../src/l7/upstream.js';
import { waypointTopologyYaml } from '../../src/bench/waypoint-topology.js';
import { renderLoad } from '../../src/bench/compare-format.js';
import { seriesValue } from '../../src/proxy/metrics.js';
import { ENVOY_PROMETHEUS_PORT, STATS_PORT } from '../../src/mesh/ports.js';

// Another name when two checkouts share a machine (lab names are global to it).
const NAME = process.env.LOAD_E2E_LAB ?? 'bench-cmp-e2e';
// How long the proxies' fds may take to come back after the load: the waypoint's idle upstream
// connections close after the L7 idle timeout (10 s), the surplus HBONE sessions the burst
// opened 5 s after their last stream (src/mesh/idle-reaper.ts); 10 s more for a busy machine.
const SETTLE_MS = DEFAULT_UPSTREAM_LIMITS.idleTimeoutMs + 10_000;
const O = { connections: 1000, seconds: 2, shortRequests: 2000, shortConcurrency: 50, settleMs: SETTLE_MS };

const dir = mkdtempSync(join(tmpdir(), 'bc-load-'));
t.teardown(() => {
  lab(['down', NAME]);
  rmSync(dir, { recursive: true, force: true });
});

// The waypoint's upstream pool gauges, summed over its endpoints, as its :15020 /metrics shows them.
interface Gauges { cx: number; rq: number; pending: number }
const gaugesOf = (text: string): Gauges | undefined => (/^# TYPE envoy_cluster_upstream_cx_active gauge$/m.test(text)
  ? { cx: seriesValue(text, 'envoy_cluster_upstream_cx_active'), rq: seriesValue(text, 'envoy_cluster_upstream_rq_active'), pending: seriesValue(text, 'envoy_cluster_upstream_rq_pending_active') }
  : undefined);
/** A proxy's Prometheus endpoint, fetched inside its netns (the waypoint's :15020 /metrics by default). */
const curlArgs = (pid: number, where = `${STATS_PORT}/metrics`) => [`--net=/proc/${pid}/ns/net`, 'curl', '-s', '-m', '3', `http://127.0.0.1:${where}`];
const fetchIn = (pid: number, where?: string): Promise<string> => new Promise((resolve) => {
  execFile('nsenter', curlArgs(pid, where), { timeout: 5000 }, (_e, out) => resolve(String(out ?? '')));
});
const SIDECAR_STATS = `${ENVOY_PROMETHEUS_PORT}/stats/prometheus`;

/** What the gauges did in one waypoint phase: peaks under the load, then how long until no upstream connection was open. */
interface GaugePhase {
  kind: string;
  startedAt: number;
  samples: number;
  max: Gauges;
  /** Last sample with a request in flight or waiting: the load's end, to the poll's resolution (none seen: the phase's start). */
  lastBusyAt?: number;
  /** First sample after it with no upstream connection open. */
  zeroAt?: number;
  last?: Gauges;
}
const gaugePhases: GaugePhase[] = [];

/**
 * Samples the waypoint's gauges while measureLoad drives it. measureLoad says when a phase starts
 * (its log) but not when one ends, and takes the lab down right after its last settle; so at each
 * boundary the poll waits for cx_active 0 (bounded by SETTLE_MS from the load's end) there, in
 * the log callback, synchronously: the lab is still up and the next phase has not begun.
 */
function gaugeWatcher(log: (m: string) => void) {
  let pid: number | undefined;
  let cur: GaugePhase | undefined;
  let timer: NodeJS.Timeout | undefined;
  const record = (g: Gauges | undefined): void => {
    if (!cur || !g) return;
    const now = performance.now();
    cur.samples++;
    cur.last = g;
    cur.max = { cx: Math.max(cur.max.cx, g.cx), rq: Math.max(cur.max.rq, g.rq), pending: Math.max(cur.max.pending, g.pending) };
    if (g.rq + g.pending > 0) {
      cur.lastBusyAt = now;
      cur.zeroAt = undefined;
    } else if (g.cx === 0 && cur.max.cx > 0 && cur.zeroAt === undefined) cur.zeroAt = now;
  };
  const scrapeSync = (): Gauges | undefined => (pid ? gaugesOf(spawnSync('nsenter', curlArgs(pid), { encoding: 'utf8', timeout: 5000 }).stdout ?? '') : undefined);
  const finish = (): void => {
    if (!cur) return;
    clearInterval(timer);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    // Bounded by the settle window from the load's end.
    cur.lastBusyAt ??= cur.startedAt;
    const from = cur.lastBusyAt;
    while (cur.zeroAt === undefined && performance.now() - from < SETTLE_MS) {
      record(scrapeSync());
      if (cur.zeroAt === undefined) Atomics.wait(pause, 0, 0, 200);
    }
    log(`  waypoint ${cur.kind} gauges: ${cur.samples} samples, peak cx_active ${cur.max.cx}, rq_active ${cur.max.rq}, rq_pending_active ${cur.max.pending}; cx_active 0 ${cur.zeroAt !== undefined && cur.lastBusyAt !== undefined ? `${((cur.zeroAt - cur.lastBusyAt) / 1000).toFixed(1)} s after the last request seen in flight` : `not within ${SETTLE_MS / 1000} s (last ${JSON.stringify(cur.last)})`}`);
    gaugePhases.push(cur);
    cur = undefined;
  };
  return (m: string): void => {
    const phase = /^\s*waypoint: .*(concurrent|short)/.exec(m);
    if (phase || /^load: lab down/.test(m)) finish();
    log(m);
    if (!phase) return;
    if (!pid) {
      const st = lab(['status', '--lab', NAME, '--json']);
      pid = st.code === 0 ? (JSON.parse(st.stdout).processes as { role: string; pid: number; alive: boolean }[]).find((p) => p.role === 'waypoint' && p.alive)?.pid : undefined;
    }
    cur = { kind: phase[1], startedAt: performance.now(), samples: 0, max: { cx: 0, rq: 0, pending: 0 } };
    const c = cur;
    let busy = false;
    // Asynchronous while the load runs (a blocking scrape would stall the test's own bookkeeping).
    timer = setInterval(() => {
      if (busy || !pid || cur !== c) return;
      busy = true;
      void fetchIn(pid).then((out) => {
        busy = false;
        if (cur === c) record(gaugesOf(out));
      });
    }, 500);
  };
}

let figures: LoadFigures | undefined;
t.before(async () => {
  const file = join(dir, 'load.yaml');
  writeFileSync(file, waypointTopologyYaml(NAME));
  figures = await measureLoad(file, NAME, O, gaugeWatcher((m) => t.comment(m)));
  // The whole table, error kinds and proxy failure reasons included, for whoever reads a failure.
  t.comment(renderLoad(figures));
});

t.test('every phase ran, and the client saw what it asked for', async (t) => {
  t.equal(figures?.phases.length, 4, 'ztunnel pair and waypoint, each with the concurrent and the short load');
  for (const ph of figures?.phases ?? []) {
    const tag = `${ph.path} ${ph.kind}`;
    if (ph.kind === 'concurrent') t.equal(ph.client.maxOpen, O.connections, `${tag}: ${O.connections} connections open at once`);
    else t.equal(ph.client.requests + ph.client.errors, O.shortRequests, `${tag}: every short request ended (ok or counted as an error)`);
    t.equal(ph.unexplainedErrors, 0, `${tag}: no client error the proxies did not log (client errors ${ph.client.errors}: ${JSON.stringify(ph.client.errorKinds)})`);
  }
});

t.test('the client ztunnel counted every connection the client opened', async (t) => {
  for (const ph of figures?.phases ?? []) {
    const za = ph.proxies.find((p) => p.id === 'ztunnel/node-a')!;
    const opened = ph.kind === 'concurrent' ? ph.client.opened! : ph.client.requests + ph.client.errors;
    t.equal(za.connectionsOpened, opened, `${ph.path} ${ph.kind}: ztunnel/node-a istio_tcp_connections_opened_total moved by ${opened}`);
  }
});

t.test('file descriptors stay bounded and go back near idle', async (t) => {
  for (const ph of figures?.phases ?? []) {
    // Waited for, not slept: measureLoad polls the fds every 100 ms after the client exits.
    t.ok(ph.settled, `${ph.path} ${ph.kind}: every proxy's fds back within ${FD_SETTLE_SLACK} of idle ${(ph.settledMs / 1000).toFixed(1)} s after the load (at most ${SETTLE_MS / 1000} s)`);
    for (const p of ph.proxies) {
      const tag = `${ph.path} ${ph.kind}: ${p.id} fds idle ${p.fds.idle}, peak ${p.fds.peak}, after ${p.fds.after}`;
      // One socket per client connection on each side of a proxy at most, plus its own handful.
      t.ok(p.fds.peak <= p.fds.idle + 2 * O.connections + FD_SLACK, `${tag}: bounded by the connections`);
      t.ok(p.fds.after <= p.fds.idle + FD_SETTLE_SLACK, `${tag}: back within ${FD_SETTLE_SLACK} of idle after the load`);
    }
    if (ph.path === 'waypoint') {
      // The waypoint opens at most maxConnectionsPerEndpoint upstream connections (HBONE streams,
      // each one a socket from ztunnel/node-b to httpbin-wp) however many clients it serves.
      const zb = ph.proxies.find((p) => p.id === 'ztunnel/node-b')!;
      const bound = DEFAULT_UPSTREAM_LIMITS.maxConnectionsPerEndpoint;
      t.ok(zb.fds.peak <= zb.fds.idle + bound + FD_SLACK, `${ph.kind}: ztunnel/node-b peak fds ${zb.fds.peak} <= idle ${zb.fds.idle} + ${bound} upstream connections + ${FD_SLACK}`);
    }
  }
});

t.test('memory stays bounded and the event-loop delay is exported', async (t) => {
  for (const ph of figures?.phases ?? []) {
    for (const p of ph.proxies) {
      t.ok(p.rssKb.peak < 400 * 1024, `${ph.path} ${ph.kind}: ${p.id} RSS peak ${Math.round(p.rssKb.peak / 1024)} MB < 400 MB`);
      t.ok(p.loopDelayMs && Number.isFinite(p.loopDelayMs.max), `${ph.path} ${ph.kind}: ${p.id} exports eventloop_delay_seconds (max ${p.loopDelayMs?.max.toFixed(1)} ms)`);
    }
  }
});

t.test('the waypoint\'s upstream pool gauges: bounded under the load, no connection open after it', async (t) => {
  t.same(gaugePhases.map((g) => g.kind), ['concurrent', 'short'], 'both waypoint phases were sampled on :15020');
  const bound = DEFAULT_UPSTREAM_LIMITS.maxConnectionsPerEndpoint;
  for (const g of gaugePhases) {
    const tag = `waypoint ${g.kind}: peak cx_active ${g.max.cx}, rq_active ${g.max.rq}, rq_pending_active ${g.max.pending}`;
    t.ok(g.max.cx > 0, `${tag}: the gauge saw the load's upstream connections`);
    // One endpoint (httpbin-wp) behind the waypoint: the per-endpoint bound is the total.
    t.ok(g.max.cx <= bound && g.max.rq <= bound, `${tag}: at most ${bound} connections and requests on them`);
    const settle = g.zeroAt !== undefined && g.lastBusyAt !== undefined ? g.zeroAt - g.lastBusyAt : Infinity;
    t.ok(settle <= SETTLE_MS, `waypoint ${g.kind}: envoy_cluster_upstream_cx_active 0 ${(settle / 1000).toFixed(1)} s after the last request seen in flight (at most ${SETTLE_MS / 1000} s; idle timeout ${DEFAULT_UPSTREAM_LIMITS.idleTimeoutMs / 1000} s)`);
  }
});

// sleep-sc -> sidecar (outbound engine) -> HBONE -> httpbin-sc's sidecar (inbound engine) -> httpbin.
const SC_NAME = `${NAME}-sc`;
const sidecarTopologyYaml = (name: string): string => `name: ${name}
nodes:
  - name: node-a
  - name: node-b
pods:
  - {name: sleep-sc, node: node-a, app: sleep, mode: sidecar}
  - {name: httpbin-sc, node: node-b, app: httpbin, mode: sidecar, labels: {app: httpbin-sc}}
services:
  - {name: httpbin-sc, selector: {app: httpbin-sc}, ports: [{name: http, port: 8000, targetPort: 80}]}
`;

t.test('sidecars under the same load: upstream gauges bounded, then cx_active 0 and fds back near idle', async (t) => {
  const file = join(dir, 'load-sc.yaml');
  writeFileSync(file, sidecarTopologyYaml(SC_NAME));
  t.teardown(() => void lab(['down', SC_NAME]));
  const { summary } = await labUp(file, SC_NAME, true);
  const client = summary.pods.find((p) => p.name === 'default/sleep-sc')!;
  const svc = summary.services.find((x) => x.name === 'default/httpbin-sc')!;
  const url = `http://${svc.vip}:${svc.ports[0].port}/status/200`;
  const sidecars = (await labStatus(SC_NAME)).processes.filter((p) => p.role === 'sidecar' && p.alive);
  t.equal(sidecars.length, 2, 'two sidecar proxies');
  const scrape = async (pid: number): Promise<Gauges | undefined> => gaugesOf(await fetchIn(pid, SIDECAR_STATS));
  // Warm up (certificates, HBONE session), then wait for the warm-up's connection to idle out, so idle is idle.
  await spawnCollectOk(client.netns, url);
  const idleAt = performance.now();
  for (const p of sidecars) while ((await scrape(p.pid))?.cx !== 0 && performance.now() - idleAt < SETTLE_MS) await new Promise((r) => setTimeout(r, 250));
  const idleFds = new Map(sidecars.map((p) => [p.pid, fdCount(p.pid) ?? 0]));
  const peak = new Map(sidecars.map((p) => [p.pid, { cx: 0, rq: 0, pending: 0 }]));
  let loading = true;
  const poll = (async () => {
    while (loading) {
      for (const p of sidecars) {
        const g = await scrape(p.pid);
        const m = peak.get(p.pid)!;
        if (g) peak.set(p.pid, { cx: Math.max(m.cx, g.cx), rq: Math.max(m.rq, g.rq), pending: Math.max(m.pending, g.pending) });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const res = await runLoadClient(client.netns, ['concurrent', '--url', url, '--connections', String(O.connections), '--seconds', String(O.seconds)], O.seconds * 1000 + 120_000, O.connections * 2 + 1024);
  loading = false;
  await poll;
  const ended = performance.now();
  // What a user sees right after the load, while the idle connections are kept: the table's column and the labels.
  const pc = lab(['proxy-config', 'sleep-sc', 'clusters', '--lab', SC_NAME]);
  t.match(pc.stdout, /^outbound\|8000\|\|httpbin-sc\.default\.svc\.cluster\.local +LEAST_REQUEST +\S+:80 \(hbone \S+:15008\) +\d+\/\d+\/\d+$/m, `lab proxy-config sleep-sc clusters: upstream cx/rq/pending (${/^outbound\|8000\|\|httpbin-sc.*$/m.exec(pc.stdout)?.[0].trim().split(/ +/).pop()})`);
  const server = sidecars.find((p) => p.id.endsWith('/httpbin-sc'))!;
  const text = await fetchIn(server.pid, SIDECAR_STATS);
  t.match(text, /^envoy_cluster_upstream_cx_active\{cluster_name="inbound\|80\|\|",upstream_host="[\d.]+:80"\} \d+$/m, 'the server sidecar\'s inbound series is named by its cluster, inbound|80||');
  t.equal(res.maxOpen, O.connections, `${O.connections} connections open at once through sleep-sc's sidecar (${res.requests} ok, ${res.errors} errors)`);
  const bound = DEFAULT_UPSTREAM_LIMITS.maxConnectionsPerEndpoint;
  for (const p of sidecars) {
    const m = peak.get(p.pid)!;
    const tag = `${p.id}: peak cx_active ${m.cx}, rq_active ${m.rq}, rq_pending_active ${m.pending}`;
    t.ok(m.cx > 0, `${tag}: the gauge saw the load`);
    t.ok(m.cx <= bound && m.rq <= bound, `${tag}: at most ${bound} (one endpoint)`);
  }
  // Waited for, bounded by the settle window: no upstream connection left, fds back near idle.
  const back = async (p: { pid: number }) => (await scrape(p.pid))?.cx === 0 && (fdCount(p.pid) ?? Infinity) <= idleFds.get(p.pid)! + FD_SETTLE_SLACK;
  const settledAt = new Map<number, number>();
  while (settledAt.size < sidecars.length && performance.now() - ended < SETTLE_MS) {
    for (const p of sidecars) if (!settledAt.has(p.pid) && (await back(p))) settledAt.set(p.pid, performance.now() - ended);
    if (settledAt.size < sidecars.length) await new Promise((r) => setTimeout(r, 200));
  }
  for (const p of sidecars) {
    const at = settledAt.get(p.pid);
    t.comment(`${p.id}: peak ${JSON.stringify(peak.get(p.pid))}, fds idle ${idleFds.get(p.pid)}, after ${fdCount(p.pid)}, settled ${at === undefined ? 'never' : `${(at / 1000).toFixed(1)} s`}`);
    t.ok(at !== undefined, `${p.id}: envoy_cluster_upstream_cx_active 0 and fds within ${FD_SETTLE_SLACK} of idle ${idleFds.get(p.pid)} (now ${fdCount(p.pid)}) ${at === undefined ? 'not' : `${(at / 1000).toFixed(1)} s`} after the load (at most ${SETTLE_MS / 1000} s)`);
  }
  await labDown(SC_NAME);
});

async function spawnCollectOk(netns: string, url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => execFile('ip', ['netns', 'exec', netns, 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', url], { timeout: 10_000 }, (e, out) => (e || String(out) !== '200' ? reject(new Error(`warm-up ${url}: ${e?.message ?? out}`)) : resolve())));
}
