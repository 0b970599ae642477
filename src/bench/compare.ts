// The talk's questions in numbers: the same workload (a client pod calling an httpbin Service)
// with the pods in each data-path mode (none, ambient, ambient + waypoint, sidecar over HBONE,
// sidecar over Istio mTLS), one lab (src/bench/compare-topology.ts), one run, the same load
// client. Modes alternate run by run so a change in the machine's load hits all of them. Before
// measuring, each path is checked: httpbin's /ip says who connected to it (the client, the
// waypoint, or a sidecar's 127.0.0.6), and the client sidecar's access log says whether it
// spoke HBONE or Istio mTLS.
import { readFileSync } from 'node:fs';
import { spawnCollect } from './spawn-collect.js';
import { labUp, labDown, labStatus, type StatusProcess } from './lab-cli.js';
import { latencyRun, concurrentRun, runLoadClient, type DatapathOptions, type LatencyFigure, type ConcurrentFigure } from './datapath.js';
import { combineLatencyRuns, spread, type LatencyRun, type Spread } from './stats.js';
import { rssKb, peakRssWhile, cpuWhile } from './procfs.js';
import { COMPARE_MODES, COMPARE_NAMESPACE, COMPARE_WAYPOINT, type CompareMode, type ComparePlacement } from './compare-topology.js';
import { attributeMemory, type MemoryShare, type ProxyRss } from './compare-memory.js';

export interface CompareOptions extends Pick<DatapathOptions, 'latencyRequests' | 'latencyRuns' | 'connections' | 'concurrentSeconds' | 'bulkBytes'> {
  bulkRuns: number;
  bulkMaxSeconds: number;
  sameNode: boolean;
}

export interface CompareRow {
  mode: CompareMode;
  label: string;
  placement: ComparePlacement;
  client: string;
  server: string;
  target: string;
  /** Who httpbin saw connecting (/ip), and how the client's sidecar reached the server. */
  origin: string;
  transport?: string;
  newConnection: LatencyFigure;
  keepAlive: LatencyFigure;
  bulk: { mbitPerS: Spread; complete: boolean; error?: string };
  concurrent: ConcurrentFigure;
  /** CPU seconds of every lab process per 1,000 requests of the concurrent run, in all and by role. */
  cpu: { per1kRequests: number; byRole: Record<string, number> };
  memory: { idle: MemoryShare; peak: MemoryShare };
}

export interface CompareFigures {
  lab: string;
  tunnel?: string;
  options: CompareOptions;
  rows: CompareRow[];
  /** VmRSS of every proxy: 1 s after the path checks, and the peak sampled every 200 ms during the load. */
  proxies: Array<{ id: string; role: string; idleKb?: number; peakKb?: number }>;
  /** Ambient pods per node: how many share each ztunnel. */
  ambientPodsPerNode: Record<string, number>;
  /** The table as printed (headers and cells), for readers of the result file. */
  table?: { headers: string[]; rows: string[][] };
}

type Log = (msg: string) => void;
const key = (short: string) => `${COMPARE_NAMESPACE}/${short}`;
const PROXY_ROLES = ['ztunnel', 'waypoint', 'sidecar'];

/**
 * What a command printed on stdout, run inside a netns: a named one (`ip netns exec`) or a
 * process's (/proc/PID/ns/net, via nsenter). Not `lab exec`, which costs 0.7 s a call.
 */
export async function inNetns(netns: string, argv: string[], timeoutMs = 15_000): Promise<string> {
  const enter = netns.startsWith('/proc/') ? ['nsenter', `--net=${netns}`] : ['ip', 'netns', 'exec', netns];
  const r = await spawnCollect([...enter, ...argv], timeoutMs);
  if (r.code === 0) return r.out;
  throw new Error(`${argv.join(' ')} in ${netns} exited ${r.code}: ${(r.err || r.out).trim().slice(0, 200)}`);
}

/** The `upstream_transport` of the last request line for `server` in a sidecar's access log. */
export function lastTransport(logText: string, server: string): string | undefined {
  const lines = logText.split('\n').filter((l) => l.includes('"upstream_transport"') && l.includes(server)).reverse();
  for (const l of lines) {
    try {
      const t = JSON.parse(l).upstream_transport;
      if (typeof t === 'string') return t;
    } catch {
      // a partial line at the end of a log still being written
    }
  }
  return undefined;
}

export async function measureCompare(file: string, name: string, o: CompareOptions, log: Log): Promise<CompareFigures> {
  log(`compare: lab up ${name}`);
  const { summary } = await labUp(file, name, true);
  try {
    const status = await labStatus(name);
    const procs = status.processes.filter((p) => p.alive);
    const pids = procs.map((p) => p.pid);
    const proxies = procs.filter((p) => PROXY_ROLES.includes(p.role));
    const pod = (short: string) => {
      const p = summary.pods.find((x) => x.name === key(short));
      if (!p) throw new Error(`${name}: no pod ${key(short)} after lab up`);
      return p;
    };
    const wp = pod(COMPARE_WAYPOINT.pod);
    const placements: ComparePlacement[] = o.sameNode ? ['cross-node', 'same-node'] : ['cross-node'];
    const cases = placements.flatMap((placement) => COMPARE_MODES.map((spec) => {
      const svc = summary.services.find((s) => s.name === key(spec.server));
      if (!svc) throw new Error(`${file} has no Service ${key(spec.server)}`);
      const target = `${svc.vip}:${svc.ports[0].port}`;
      return { spec, placement, client: pod(spec.client[placement]), server: pod(spec.server), target, url: `http://${target}/status/200` };
    }));

    // A figure for a mode is only one if the requests took that mode's path.
    const checked = new Map<(typeof cases)[number], { origin: string; transport?: string }>();
    for (const c of cases) {
      const body = await inNetns(c.client.netns, ['curl', '-s', '-m', '5', `http://${c.target}/ip`]);
      let origin: string;
      try {
        origin = String(JSON.parse(body).origin);
      } catch {
        throw new Error(`curl http://${c.target}/ip from ${c.client.name} (${c.spec.label}) did not answer JSON: ${body.slice(0, 200)}`);
      }
      const expected = c.spec.podMode === 'sidecar' ? '127.0.0.6' : c.spec.mode === 'waypoint' ? wp.ip : c.client.ip;
      if (origin !== expected) throw new Error(`${c.spec.label} (${c.placement}): httpbin saw ${origin}, expected ${expected}: the requests do not take that mode's path`);
      let transport: string | undefined;
      if (c.spec.podMode === 'sidecar') {
        const sc = procs.find((p) => p.role === 'sidecar' && p.pod === c.client.name);
        // `lab status --json` lists each process's log file.
        const logFile = (sc as (StatusProcess & { log?: string }) | undefined)?.log;
        // The sidecar writes its access log line when the response has ended: it may trail curl.
        for (let i = 0; i < 30 && logFile && !transport; i++) {
          transport = lastTransport(readFileSync(logFile, 'utf8'), c.spec.server);
          if (!transport) await new Promise((r) => setTimeout(r, 100));
        }
        const want = c.spec.mode === 'sidecar' ? /^hbone/ : /istio-mtls/;
        if (!transport || !want.test(transport)) throw new Error(`${c.spec.label} (${c.placement}): the client sidecar ${c.client.name}'s log says upstream_transport ${transport ?? '(none)'}, expected ${want}`);
      }
      checked.set(c, { origin, ...(transport ? { transport } : {}) });
    }

    await new Promise((r) => setTimeout(r, 1000));
    const idle = new Map(pids.map((p) => [p, rssKb(p)]));

    const runs = new Map(cases.map((c) => [c, { newConnection: [] as LatencyRun[], keepAlive: [] as LatencyRun[], mbit: [] as number[], complete: true, error: undefined as string | undefined }]));
    const { result: loaded, peakKb } = await peakRssWhile(pids, async () => {
      for (let r = 0; r < o.latencyRuns; r++) {
        // Rotate which mode goes first, so a trend in the machine's load favours none of them.
        const order = cases.map((_, i) => cases[(i + r) % cases.length]);
        for (const kind of ['newConnection', 'keepAlive'] as const) {
          log(`  run ${r + 1}/${o.latencyRuns}: ${kind === 'newConnection' ? 'new connection' : 'kept alive'}, ${o.latencyRequests} requests per mode`);
          for (const c of order) runs.get(c)![kind].push(await latencyRun(c.client.netns, c.url, kind === 'keepAlive', o));
        }
      }
      for (let r = 0; r < o.bulkRuns; r++) {
        log(`  run ${r + 1}/${o.bulkRuns}: one bulk stream per mode (up to ${o.bulkMaxSeconds} s)`);
        for (const c of cases.map((_, i) => cases[(i + r) % cases.length])) {
          const res = await runLoadClient(c.client.netns, ['bulk', '--url', `http://${c.target}/bytes/${o.bulkBytes}`, '--max-seconds', String(o.bulkMaxSeconds)], o.bulkMaxSeconds * 1000 + 30_000);
          const x = runs.get(c)!;
          x.mbit.push(res.mbitPerS);
          x.complete &&= res.complete;
          x.error ??= res.error;
        }
      }
      const conc = new Map<(typeof cases)[number], { figure: ConcurrentFigure; cpu: Map<number, number> }>();
      for (const c of cases) {
        log(`  ${c.spec.label} (${c.placement}): ${o.connections} concurrent connections for ${o.concurrentSeconds} s`);
        const { result, cpuSeconds } = await cpuWhile(pids, () => concurrentRun(c.client.netns, c.url, o));
        conc.set(c, { figure: result, cpu: cpuSeconds });
      }
      return conc;
    });

    const proxyRss = (which: 'idle' | 'peak'): ProxyRss[] => proxies.map((p) => ({ id: p.id, role: p.role, pod: p.pod, node: p.node, kb: which === 'idle' ? idle.get(p.pid) : peakKb.get(p.pid) }));
    const rows: CompareRow[] = cases.map((c) => {
      const x = runs.get(c)!;
      const { figure, cpu } = loaded.get(c)!;
      const byRole: Record<string, number> = {};
      let total = 0;
      for (const [pid, s] of cpu) {
        const role = procs.find((p) => p.pid === pid)?.role ?? 'other';
        byRole[role] = (byRole[role] ?? 0) + s;
        total += s;
      }
      const per1k = (s: number) => (figure.requests > 0 ? (s * 1000) / figure.requests : NaN);
      return {
        mode: c.spec.mode, label: c.spec.label, placement: c.placement, client: c.client.name, server: c.server.name, target: c.target,
        ...checked.get(c)!,
        newConnection: combineLatencyRuns(x.newConnection), keepAlive: combineLatencyRuns(x.keepAlive),
        bulk: { mbitPerS: spread(x.mbit), complete: x.complete, ...(x.error ? { error: x.error } : {}) },
        concurrent: figure,
        cpu: { per1kRequests: per1k(total), byRole: Object.fromEntries(Object.entries(byRole).filter(([, s]) => s > 0).map(([k, s]) => [k, per1k(s)])) },
        memory: {
          idle: attributeMemory(c.spec, c.client.name, c.server.name, summary.pods, proxyRss('idle')),
          peak: attributeMemory(c.spec, c.client.name, c.server.name, summary.pods, proxyRss('peak')),
        },
      };
    });
    const ambientPodsPerNode: Record<string, number> = {};
    for (const p of summary.pods) if (p.role === 'workload' && p.mode === 'ambient') ambientPodsPerNode[p.node] = (ambientPodsPerNode[p.node] ?? 0) + 1;
    return {
      lab: name, tunnel: status.tunnel, options: o, rows, ambientPodsPerNode,
      proxies: proxies.map((p) => ({ id: p.id, role: p.role, idleKb: idle.get(p.pid), peakKb: peakKb.get(p.pid) })),
    };
  } finally {
    log(`compare: lab down ${name}`);
    await labDown(name);
  }
}
