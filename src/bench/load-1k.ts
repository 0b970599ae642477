// Load on the proxies (issue 13's "Load"): 1,000 concurrent keep-alive connections, then 10,000
// short requests (a new connection each), from one client pod through one ztunnel pair, and
// the same through a waypoint. For each proxy: open file descriptors (/proc/PID/fd) and VmRSS
// idle, at the peak (sampled every 200 ms) and after the load (once the fds have settled), the
// event-loop delay during the load (its eventloop_delay_seconds gauge), the connections its
// metrics counted and the failures its log recorded. A client error that no proxy recorded is
// reported as unexplained: nothing may be dropped silently.
import { readdirSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { labUp, labDown, labStatus, type StatusProcess } from './lab-cli.js';
import { runLoadClient } from './datapath.js';
import { rssKb } from './procfs.js';
import { inNetns } from './compare.js';
import { WAYPOINT_BENCH } from './waypoint-topology.js';
import { seriesValue } from '../proxy/metrics.js';

export interface LoadOptions {
  /** Concurrent keep-alive connections, each looping GET /status/200 for `seconds`. */
  connections: number;
  seconds: number;
  /** Short requests (Connection: close), `shortConcurrency` at a time. */
  shortRequests: number;
  shortConcurrency: number;
  /** How long to wait for the proxies' fds to return near their idle count. */
  settleMs: number;
}

export type LoadPathName = 'ztunnel pair' | 'waypoint';
export type LoadKind = 'concurrent' | 'short';

export interface ProxyLoad {
  id: string;
  fds: { idle: number; peak: number; after: number };
  rssKb: { idle: number; peak: number; after: number };
  /** eventloop_delay_seconds during the phase, in ms (undefined: the proxy does not export it). */
  loopDelayMs?: { p50: number; p99: number; max: number };
  /** istio_tcp_connections_opened_total during the phase, all series. */
  connectionsOpened: number;
  failures: LogFailures;
}

export interface LoadPhase {
  path: LoadPathName;
  kind: LoadKind;
  client: { requests: number; errors: number; errorKinds: Record<string, number>; rps: number; p50: number; p99: number; maxOpen?: number; opened?: number };
  proxies: ProxyLoad[];
  /** Until every proxy's fds were back within `FD_SETTLE_SLACK` of idle (or settleMs, if they never were). */
  settledMs: number;
  settled: boolean;
  /** Client errors minus every failure the proxies on the path logged: above 0, some were silent. */
  unexplainedErrors: number;
}

export interface LoadFigures {
  lab: string;
  tunnel?: string;
  options: LoadOptions;
  phases: LoadPhase[];
}

/** fds above idle a proxy may hold at its peak beyond one per client connection on each side. */
export const FD_SLACK = 16;

/**
 * fds above idle still counted as "back to idle" after the load: a warm HBONE session each way
 * (the pool keeps the oldest one of a key for its idle timeout, idle-reaper.ts), a pooled
 * upstream connection, one spare. The surplus sessions of a burst and the waypoint's idle
 * upstream connections must be gone: each of those is one fd here, and 9 or 100 of them
 * lingered before they were reaped.
 */
export const FD_SETTLE_SLACK = 4;

export interface LogFailures {
  /** Lines at warn level or above, or whose message says a connection or request failed. */
  failed: number;
  /** Completed connections whose copy ended on an error (logged with a reason). */
  endedOnError: number;
  reasons: Record<string, number>;
}

/**
 * A `reason` on a connection that completed normally: ztunnel notes why it skipped RBAC (the
 * connection came through the destination's waypoint). A copy that ended on an error replaces
 * it with the error.
 */
const NOTE_REASONS = [/RBAC skipped$/];

/** Failures in a slice of a proxy's JSON log (pino lines; anything else is ignored). */
export function logFailures(text: string): LogFailures {
  const out: LogFailures = { failed: 0, endedOnError: 0, reasons: {} };
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line);
    } catch {
      continue;
    }
    const msg = String(j.msg ?? '');
    const flags = typeof j.response_flags === 'string' ? j.response_flags : '-';
    const reason = String(j.reason ?? j.err ?? (flags !== '-' ? `response_flags ${flags}` : msg)).split('\n')[0].slice(0, 120);
    if (Number(j.level) >= 40 || /fail/i.test(msg) || flags !== '-') {
      out.failed++;
      out.reasons[reason] = (out.reasons[reason] ?? 0) + 1;
    } else if (msg === 'connection complete' && j.reason !== undefined && !NOTE_REASONS.some((r) => r.test(reason))) {
      out.endedOnError++;
      out.reasons[reason] = (out.reasons[reason] ?? 0) + 1;
    }
  }
  return out;
}

/** Client errors no proxy on the path accounts for. */
export function unexplained(clientErrors: number, proxies: ReadonlyArray<Pick<ProxyLoad, 'failures'>>): number {
  const seen = proxies.reduce((a, p) => a + p.failures.failed + p.failures.endedOnError, 0);
  return Math.max(0, clientErrors - seen);
}

export function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

function readFrom(file: string, offset: number): string {
  const size = statSync(file).size;
  if (size <= offset) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const sizeOf = (file: string): number => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

type Proc = StatusProcess & { log?: string };
type Log = (msg: string) => void;

/** The proxy's Prometheus text from its admin port, fetched inside its netns. */
async function scrape(p: Proc): Promise<string> {
  try {
    return await inNetns(`/proc/${p.pid}/ns/net`, ['curl', '-s', '-m', '5', 'http://127.0.0.1:15000/metrics']);
  } catch {
    return '';
  }
}

async function runPhase(path: LoadPathName, kind: LoadKind, netns: string, url: string, watch: readonly Proc[], o: LoadOptions, log: Log): Promise<LoadPhase> {
  log(`  ${path}: ${kind === 'concurrent' ? `${o.connections} concurrent connections for ${o.seconds} s` : `${o.shortRequests} short requests, ${o.shortConcurrency} at a time`}`);
  const before = new Map<number, { fds: number; rss: number; opened: number; logAt: number }>();
  for (const p of watch) {
    const m = await scrape(p); // also resets the loop-delay gauge: what the next scrape reads is this phase's
    before.set(p.pid, { fds: fdCount(p.pid) ?? 0, rss: rssKb(p.pid) ?? 0, opened: seriesValue(m, 'istio_tcp_connections_opened_total'), logAt: p.log ? sizeOf(p.log) : 0 });
  }
  const peak = new Map(watch.map((p) => [p.pid, { fds: before.get(p.pid)!.fds, rss: before.get(p.pid)!.rss }]));
  const sample = () => {
    for (const p of watch) {
      const x = peak.get(p.pid)!;
      x.fds = Math.max(x.fds, fdCount(p.pid) ?? 0);
      x.rss = Math.max(x.rss, rssKb(p.pid) ?? 0);
    }
  };
  const timer = setInterval(sample, 200);
  let res: Record<string, any>;
  try {
    res = kind === 'concurrent'
      ? await runLoadClient(netns, ['concurrent', '--url', url, '--connections', String(o.connections), '--seconds', String(o.seconds)], o.seconds * 1000 + 120_000, o.connections * 2 + 1024)
      : await runLoadClient(netns, ['short', '--url', url, '--requests', String(o.shortRequests), '--connections', String(o.shortConcurrency)], 600_000, o.shortConcurrency * 2 + 1024);
  } finally {
    sample();
    clearInterval(timer);
  }
  const metrics = new Map<number, string>();
  for (const p of watch) metrics.set(p.pid, await scrape(p));

  // Connections close asynchronously after the client exits: wait for the fds, not a fixed time.
  const t0 = performance.now();
  const back = () => watch.every((p) => (fdCount(p.pid) ?? 0) <= before.get(p.pid)!.fds + FD_SETTLE_SLACK);
  while (!back() && performance.now() - t0 < o.settleMs) await new Promise((r) => setTimeout(r, 100));
  const settled = back();
  const settledMs = performance.now() - t0;

  const proxies: ProxyLoad[] = watch.map((p) => {
    const b = before.get(p.pid)!;
    const m = metrics.get(p.pid)!;
    const has = /^eventloop_delay_seconds\{/m.test(m);
    const q = (quantile: string) => seriesValue(m, 'eventloop_delay_seconds', { quantile }) * 1000;
    return {
      id: p.id,
      fds: { idle: b.fds, peak: peak.get(p.pid)!.fds, after: fdCount(p.pid) ?? 0 },
      rssKb: { idle: b.rss, peak: peak.get(p.pid)!.rss, after: rssKb(p.pid) ?? 0 },
      ...(has ? { loopDelayMs: { p50: q('0.5'), p99: q('0.99'), max: q('max') } } : {}),
      connectionsOpened: seriesValue(m, 'istio_tcp_connections_opened_total') - b.opened,
      failures: p.log ? logFailures(readFrom(p.log, b.logAt)) : { failed: 0, endedOnError: 0, reasons: {} },
    };
  });
  const client = {
    requests: res.requests, errors: res.errors, errorKinds: res.errorKinds ?? {}, rps: res.rps, p50: res.latencyMs.p50, p99: res.latencyMs.p99,
    ...(kind === 'concurrent' ? { maxOpen: res.maxOpen, opened: res.opened } : {}),
  };
  return { path, kind, client, proxies, settledMs, settled, unexplainedErrors: unexplained(client.errors, proxies) };
}

/** `file`: the waypoint section's topology (src/bench/waypoint-topology.ts): sleep -> httpbin direct, and -> httpbin-wp through its waypoint. */
export async function measureLoad(file: string, name: string, o: LoadOptions, log: Log): Promise<LoadFigures> {
  const B = WAYPOINT_BENCH;
  log(`load: lab up ${name}`);
  const { summary } = await labUp(file, name, true);
  try {
    const status = await labStatus(name);
    const procs = status.processes.filter((p) => p.alive) as Proc[];
    const ztunnels = procs.filter((p) => p.role === 'ztunnel');
    const wp = procs.find((p) => p.role === 'waypoint');
    const client = summary.pods.find((p) => p.name === B.client);
    if (!client || !wp || ztunnels.length !== 2) throw new Error(`${name}: expected a client ${B.client}, a waypoint and 2 ztunnels after lab up`);
    const url = (svc: string) => {
      const s = summary.services.find((x) => x.name === svc);
      if (!s) throw new Error(`${file} has no Service ${svc}`);
      return `http://${s.vip}:${s.ports[0].port}/status/200`;
    };
    // One request on each path first: HBONE pools and certificates are set up outside the figures.
    for (const svc of [B.direct.service, B.waypoint.service]) await inNetns(client.netns, ['curl', '-s', '-m', '5', '-o', '/dev/null', url(svc)]);
    await new Promise((r) => setTimeout(r, 1000));
    const phases: LoadPhase[] = [];
    for (const [path, svc, watch] of [['ztunnel pair', B.direct.service, ztunnels], ['waypoint', B.waypoint.service, [...ztunnels, wp]]] as const) {
      for (const kind of ['concurrent', 'short'] as const) phases.push(await runPhase(path, kind, client.netns, url(svc), watch, o, log));
    }
    return { lab: name, tunnel: status.tunnel, options: o, phases };
  } finally {
    log(`load: lab down ${name}`);
    await labDown(name);
  }
}
