// Where a new connection's time goes, hop by hop, from `lab trace --json`: the capture
// timestamps of the first SYN of every leg (client -> client ztunnel -> HBONE -> [waypoint ->
// HBONE ->] destination ztunnel -> app). Each gap between two consecutive hops is charged to:
//   - the proxy that took the previous leg in, when the next hop opens a new leg (its decision,
//     its upstream connect and, for an HBONE server, the TLS handshake and CONNECT before it
//     dials the app: everything between its inbound SYN and its outbound SYN);
//   - the Geneve hop, when either hop is Geneve-encapsulated or a Geneve device
//     (istioout/istioin/pistioout/pistioin, kernel or the userspace daemon);
//   - the kernel path otherwise (veths, routing, the underlay bridge).
// A SYN timeline, so the proxies' figures are connection setup, not per-request work.
import { labUp, labDown, labStatus, runCli } from './lab-cli.js';
import { median } from './stats.js';
import { WAYPOINT_BENCH } from './waypoint-topology.js';

export interface TraceHop {
  index: number;
  leg: number;
  role: string;
  name: string;
  interface: string;
  tUs: number;
  encap: string;
}

export interface TraceLegInfo {
  id: number;
  encap: string;
  origin: string;
  delivered: string;
}

export interface HopSegment {
  /** "kernel path", "Geneve hops", or "in <proxy>" (e.g. "in ztunnel node-a"). */
  what: string;
  us: number;
}

const GENEVE_DEVICES = new Set(['istioout', 'istioin', 'pistioout', 'pistioin']);
const isGeneve = (h: TraceHop): boolean => h.encap === 'geneve' || GENEVE_DEVICES.has(h.interface);

/** The SYN timeline of one trace split into segments, in path order (a segment name appears once). */
export function hopBreakdown(hops: readonly TraceHop[], legs: readonly TraceLegInfo[]): Breakdown {
  const order: string[] = [];
  const sums = new Map<string, number>();
  for (let i = 1; i < hops.length; i++) {
    const a = hops[i - 1];
    const b = hops[i];
    const what = b.leg !== a.leg ? `in ${legs.find((l) => l.id === a.leg)?.delivered ?? `${a.role} ${a.name}`}`
      : isGeneve(a) || isGeneve(b) ? 'Geneve hops' : 'kernel path';
    if (!sums.has(what)) order.push(what);
    sums.set(what, (sums.get(what) ?? 0) + (b.tUs - a.tUs));
  }
  return { segments: order.map((what) => ({ what, us: sums.get(what)! })), totalUs: hops.length ? hops[hops.length - 1].tUs - hops[0].tUs : 0 };
}

export interface Breakdown {
  segments: HopSegment[];
  totalUs: number;
}

export interface HopPathFigures {
  path: 'direct' | 'waypoint';
  target: string;
  /** The first trace: every HBONE leg opens a new TLS connection. */
  cold: Breakdown;
  /** The traces after it, median per segment: the HBONE legs reuse the pooled connections (a CONNECT stream each). */
  warm: Breakdown & { runs: number };
}

export interface HopFigures {
  lab: string;
  tunnel?: string;
  paths: HopPathFigures[];
}

/** Median per segment over several traces of the same path (a segment missing in a run counts 0). */
export function combineBreakdowns(runs: readonly Breakdown[]): Breakdown {
  const names: string[] = [];
  for (const r of runs) for (const s of r.segments) if (!names.includes(s.what)) names.push(s.what);
  return {
    segments: names.map((what) => ({ what, us: median(runs.map((r) => r.segments.find((s) => s.what === what)?.us ?? 0)) })),
    totalUs: median(runs.map((r) => r.totalUs)),
  };
}

type Log = (msg: string) => void;

/** `file`: the waypoint section's topology; traces sleep -> httpbin and sleep -> httpbin-wp once cold, then `runs` times warm. */
export async function measureHops(file: string, name: string, runs: number, log: Log): Promise<HopFigures> {
  const B = WAYPOINT_BENCH;
  log(`hops: lab up ${name}`);
  await labUp(file, name, true);
  try {
    const { tunnel } = await labStatus(name);
    const paths: HopPathFigures[] = [];
    for (const [path, svc] of [['direct', B.direct.service], ['waypoint', B.waypoint.service]] as const) {
      const target = `http://${svc.split('/')[1]}:${B.port}/status/200`;
      const one: Breakdown[] = [];
      for (let r = 0; r <= runs; r++) {
        log(`  ${path}: lab trace ${r === 0 ? 'cold' : `warm ${r}/${runs}`}`);
        const res = await runCli(['trace', '--lab', name, B.client.split('/')[1], target, '--json'], 120_000);
        if (res.code !== 0) throw new Error(`lab trace ${target} failed (exit ${res.code}): ${res.stderr.trim().split('\n')[0]}`);
        const t = JSON.parse(res.stdout) as { hops: TraceHop[]; legs: TraceLegInfo[] };
        one.push(hopBreakdown(t.hops, t.legs));
      }
      paths.push({ path, target, cold: one[0], warm: { runs, ...combineBreakdowns(one.slice(1)) } });
    }
    return { lab: name, tunnel, paths };
  } finally {
    log(`hops: lab down ${name}`);
    await labDown(name);
  }
}
