// Data-path figures of one lab: request latency (new connection / kept alive), one bulk
// stream's throughput and 50 concurrent connections, from each client pod to httpbin's
// Service; plus RSS of every lab process idle and under that load, and where the CPU went
// during the bulk stream. The same function measures the mesh lab and the --no-mesh baseline.
import { resolve } from 'node:path';
import { REPO, labUp, labDown, labStatus, type StatusProcess } from './lab-cli.js';
import { spread, combineLatencyRuns, type Spread, type LatencySummary, type LatencyRun } from './stats.js';
import { rssKb, peakRssWhile, cpuWhile } from './procfs.js';
import { spawnCollect } from './spawn-collect.js';

const LOAD_CLIENT = resolve(REPO, 'dist/bench/load-client.js');

export interface DatapathOptions {
  latencyRequests: number;
  latencyRuns: number;
  bulkBytes: number;
  bulkMaxSeconds: number;
  bulkRuns: number;
  connections: number;
  concurrentSeconds: number;
}

/** Which client pod exercises which path (pods of bench/topologies/datapath.yaml). */
export const PATHS = [
  { path: 'cross-node', client: 'default/sleep' },
  { path: 'same-node', client: 'default/sleep2' },
] as const;
export type PathName = (typeof PATHS)[number]['path'];

export interface LatencyFigure {
  p50: Spread;
  p99: Spread;
  errors: number;
  firstError?: string;
}

export interface PathFigures {
  path: PathName;
  client: string;
  newConnection: LatencyFigure;
  keepAlive: LatencyFigure;
  bulk: {
    mbitPerS: Spread; bytes: number; complete: boolean; error?: string;
    /** By process (`ztunnel/node-a`, `geneve/node-b`, `pod/default/httpbin`, `load-client`). */
    cpuSecondsPerGiB: Record<string, number>;
    /** The same summed by role: `ztunnel` is the ztunnel pair the target is about, `geneve` both daemons. */
    cpuSecondsPerGiBByRole?: Record<string, number>;
  };
  concurrent: ConcurrentFigure;
}

export interface ConcurrentFigure {
  connections: number;
  maxOpen: number;
  errors: number;
  droppedEarly: number;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  firstError?: string;
}

export interface ProcessMemory {
  id: string;
  role: string;
  idleKb?: number;
  peakKb?: number;
}

export interface LabFigures {
  mesh: boolean;
  lab: string;
  tunnel?: string;
  paths: PathFigures[];
  memory: { processes: ProcessMemory[]; totalIdleKb: number; totalPeakKb: number };
}

type Log = (msg: string) => void;

/**
 * Runs the load client inside a pod's netns and returns its JSON line. `nofile` raises its
 * open-files limit (prlimit) for loads of more connections than a default `ulimit -n` allows.
 */
export async function runLoadClient(netns: string, args: string[], timeoutMs: number, nofile?: number): Promise<Record<string, any>> {
  const argv = ['ip', 'netns', 'exec', netns, process.execPath, LOAD_CLIENT, ...args];
  if (nofile) argv.unshift('prlimit', `--nofile=${nofile}:${nofile}`, '--');
  const { code, out, err } = await spawnCollect(argv, timeoutMs);
  try {
    return JSON.parse(out.trim().split('\n').pop() ?? '');
  } catch {
    throw new Error(`load client in ${netns} (${args.join(' ')}) exited ${code}: ${err.trim() || out.trim() || 'no output (timed out?)'}`);
  }
}

/** One run of `latency` requests to `url` from a pod: its p50/p99 and errors. */
export async function latencyRun(netns: string, url: string, keepalive: boolean, o: Pick<DatapathOptions, 'latencyRequests'>): Promise<LatencyRun> {
  const res = await runLoadClient(netns, ['latency', '--url', url, '--requests', String(o.latencyRequests), '--warmup', '10', ...(keepalive ? ['--keepalive'] : [])],
    60_000 + o.latencyRequests * 200);
  const l = res.latencyMs as LatencySummary;
  return { p50: l.p50, p99: l.p99, errors: res.errors, firstError: res.firstError };
}

async function latencyFigure(netns: string, url: string, keepalive: boolean, o: DatapathOptions): Promise<LatencyFigure> {
  const runs: LatencyRun[] = [];
  for (let r = 0; r < o.latencyRuns; r++) runs.push(await latencyRun(netns, url, keepalive, o));
  return combineLatencyRuns(runs);
}

/** `connections` keep-alive connections from a pod, each looping GET `url` for `concurrentSeconds`. */
export async function concurrentRun(netns: string, url: string, o: Pick<DatapathOptions, 'connections' | 'concurrentSeconds'>): Promise<ConcurrentFigure> {
  const c = await runLoadClient(netns, ['concurrent', '--url', url, '--connections', String(o.connections), '--seconds', String(o.concurrentSeconds)],
    o.concurrentSeconds * 1000 + 60_000);
  return {
    connections: c.connections, maxOpen: c.maxOpen, errors: c.errors, droppedEarly: c.droppedEarly, requests: c.requests,
    rps: c.rps, p50: c.latencyMs.p50, p99: c.latencyMs.p99, firstError: c.firstError,
  };
}

function idOf(procs: StatusProcess[], pid: number): string {
  const p = procs.find((x) => x.pid === pid);
  return p ? p.id : String(pid);
}

/** Per-process CPU-s/GiB summed by the process's role (ztunnel, geneve, app, ...). */
export function byRole(perProcess: Record<string, number>, procs: readonly Pick<StatusProcess, 'id' | 'role'>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, s] of Object.entries(perProcess)) {
    const role = procs.find((p) => p.id === id)?.role ?? id;
    out[role] = (out[role] ?? 0) + s;
  }
  return out;
}

export async function measureDatapath(file: string, name: string, mesh: boolean, o: DatapathOptions, log: Log): Promise<LabFigures> {
  log(`data path: lab up ${name}${mesh ? '' : ' --no-mesh'}`);
  const { summary } = await labUp(file, name, mesh);
  try {
    const status = await labStatus(name);
    const procs = status.processes.filter((p) => p.alive);
    const pids = procs.map((p) => p.pid);
    const svc = summary.services.find((s) => s.name === 'default/httpbin');
    if (!svc) throw new Error(`${file} has no default/httpbin Service`);
    const base = `http://${svc.vip}:${svc.ports[0].port}`;
    // Let freshly started processes finish their start-up allocations before "idle".
    await new Promise((r) => setTimeout(r, 1000));
    const idle = new Map(pids.map((p) => [p, rssKb(p)]));

    const { result: paths, peakKb } = await peakRssWhile(pids, async () => {
      const out: PathFigures[] = [];
      for (const { path, client } of PATHS) {
        const pod = summary.pods.find((p) => p.name === client);
        if (!pod) throw new Error(`${file} has no pod ${client}`);
        log(`  ${path}: latency (${o.latencyRuns} x ${o.latencyRequests} requests, new connection and kept alive)`);
        const newConnection = await latencyFigure(pod.netns, `${base}/status/200`, false, o);
        const keepAlive = await latencyFigure(pod.netns, `${base}/status/200`, true, o);

        log(`  ${path}: bulk stream (${o.bulkRuns} x up to ${o.bulkBytes} bytes or ${o.bulkMaxSeconds} s)`);
        const mbit: number[] = [];
        let bytes = 0;
        let complete = true;
        let error: string | undefined;
        const cpu = new Map<string, number>();
        for (let r = 0; r < o.bulkRuns; r++) {
          const { result, cpuSeconds } = await cpuWhile(pids, () =>
            runLoadClient(pod.netns, ['bulk', '--url', `${base}/bytes/${o.bulkBytes}`, '--max-seconds', String(o.bulkMaxSeconds)], o.bulkMaxSeconds * 1000 + 30_000));
          mbit.push(result.mbitPerS);
          bytes += result.bytes;
          complete &&= result.complete;
          error ??= result.error;
          for (const [pid, s] of cpuSeconds) cpu.set(idOf(procs, pid), (cpu.get(idOf(procs, pid)) ?? 0) + s);
          if (result.cpuSeconds !== undefined) cpu.set('load-client', (cpu.get('load-client') ?? 0) + result.cpuSeconds);
        }
        const gib = bytes / 2 ** 30;
        const cpuSecondsPerGiB = Object.fromEntries([...cpu].filter(([, s]) => s > 0).map(([k, s]) => [k, gib > 0 ? s / gib : NaN]));

        log(`  ${path}: ${o.connections} concurrent connections for ${o.concurrentSeconds} s`);
        const concurrent = await concurrentRun(pod.netns, `${base}/status/200`, o);
        out.push({
          path, client, newConnection, keepAlive,
          bulk: { mbitPerS: spread(mbit), bytes, complete, error, cpuSecondsPerGiB, cpuSecondsPerGiBByRole: byRole(cpuSecondsPerGiB, procs) },
          concurrent,
        });
      }
      return out;
    });

    const processes: ProcessMemory[] = procs.map((p) => ({ id: p.id, role: p.role, idleKb: idle.get(p.pid), peakKb: peakKb.get(p.pid) }));
    const sum = (k: 'idleKb' | 'peakKb') => processes.reduce((a, p) => a + (p[k] ?? 0), 0);
    return { mesh, lab: name, tunnel: status.tunnel, paths, memory: { processes, totalIdleKb: sum('idleKb'), totalPeakKb: sum('peakKb') } };
  } finally {
    log(`data path: lab down ${name}`);
    await labDown(name);
  }
}
