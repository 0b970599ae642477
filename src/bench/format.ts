// Renders a bench run for the terminal: figures against their baselines, where `lab up`
// spends its time, memory and CPU of the data path, and the target table. Pure.
import { table } from '../cli/output.js';
import type { BenchReport } from './report.js';
import type { LabFigures, PathFigures, PathName, LatencyFigure, ConcurrentFigure } from './datapath.js';
import type { WaypointFigures, WaypointPathFigures } from './waypoint.js';
import { fmtMs, fmtMiB, fmtMbit, fmtSpread, fmtRatio, fmtDeltaMs, fmtMet } from './format-units.js';
import { renderFootprint } from './footprint.js';
import { renderCompare, renderLoad, renderHops } from './compare-format.js';

const STEPS = ['state', 'netns', 'mesh', 'links', 'rules', 'files', 'processes', 'ready'];

export function renderLifecycle(r: Pick<BenchReport, 'lifecycle' | 'growth'>): string {
  const rows: string[][] = [];
  for (const c of r.lifecycle) {
    rows.push([`${c.label} (${c.nodes} nodes, ${c.pods} pods)`, 'no mesh', fmtSpread(c.noMesh.upWallMs, fmtMs), fmtSpread(c.noMesh.downWallMs, fmtMs), '', String(c.reps)]);
    rows.push(['', 'mesh',
      c.mesh ? fmtSpread(c.mesh.upWallMs, fmtMs) : 'n/a: mesh not available',
      c.mesh ? fmtSpread(c.mesh.downWallMs, fmtMs) : '',
      c.mesh ? `up ${fmtRatio(c.mesh.upWallMs.median, c.noMesh.upWallMs.median)}, down ${fmtRatio(c.mesh.downWallMs.median, c.noMesh.downWallMs.median)}` : '',
      String(c.reps)]);
  }
  const out = [table(['lab', 'variant', 'up (wall)', 'down (wall)', 'mesh vs baseline', 'runs'], rows)];

  const stepRows: string[][] = [];
  for (const c of r.lifecycle) {
    for (const [variant, v] of [['no mesh', c.noMesh], ['mesh', c.mesh]] as const) {
      if (!v) continue;
      const total = STEPS.reduce((a, s) => a + (v.stepsMs[s] ?? 0), 0);
      const top = STEPS.filter((s) => v.stepsMs[s] !== undefined).sort((a, b) => v.stepsMs[b] - v.stepsMs[a])[0];
      stepRows.push([`${c.label} ${variant}`, ...STEPS.map((s) => (v.stepsMs[s] === undefined ? '' : fmtMs(v.stepsMs[s]))),
        top ? `${top} ${Math.round((v.stepsMs[top] / total) * 100)}%` : '']);
    }
  }
  out.push('', 'Where `lab up` spends its time (median timingsMs per step):', table(['lab', ...STEPS, 'largest'], stepRows));

  if (r.growth.length) {
    out.push('', 'Growth of `lab up` (least squares over the cases: base + per node + per pod):',
      table(['variant', 'base', 'per node', 'per pod', '2x size costs'], r.growth.map((g) => [
        g.variant, fmtMs(g.baseMs), fmtMs(g.perNodeMs), fmtMs(g.perPodMs), g.doublingRatio === undefined ? 'n/a' : `x${g.doublingRatio.toFixed(2)}`,
      ])));
  }
  return out.join('\n');
}

const pathOf = (l: LabFigures | undefined, p: PathName): PathFigures | undefined => l?.paths.find((x) => x.path === p);
const errs = (n: number | undefined) => (n ? ` [${n} errors]` : '');

export function renderDatapath(d: BenchReport['datapath']): string {
  const b = d.baseline;
  const m = d.mesh;
  const na = d.meshError ? 'n/a: mesh not available' : 'n/a';
  const rows: string[][] = [];
  for (const p of ['cross-node', 'same-node'] as const) {
    const bp = pathOf(b, p);
    const mp = pathOf(m, p);
    const lat = (label: string, pick: (x: PathFigures) => LatencyFigure) => {
      for (const q of ['p50', 'p99'] as const) {
        rows.push([`${label} ${q}`, p,
          bp ? fmtSpread(pick(bp)[q], fmtMs) + (q === 'p50' ? errs(pick(bp).errors) : '') : 'n/a',
          mp ? fmtSpread(pick(mp)[q], fmtMs) + (q === 'p50' ? errs(pick(mp).errors) : '') : na,
          bp && mp ? fmtDeltaMs(pick(mp)[q].median, pick(bp)[q].median) : '']);
      }
    };
    lat('new connection', (x) => x.newConnection);
    lat('kept alive', (x) => x.keepAlive);
    rows.push(['one bulk stream', p,
      bp ? fmtSpread(bp.bulk.mbitPerS, fmtMbit) : 'n/a', mp ? fmtSpread(mp.bulk.mbitPerS, fmtMbit) + (mp.bulk.error ? ` [${mp.bulk.error}]` : '') : na,
      bp && mp ? fmtRatio(mp.bulk.mbitPerS.median, bp.bulk.mbitPerS.median) : '']);
    const conc = (x: PathFigures | undefined) => (x ? `${Math.round(x.concurrent.rps)} req/s, ${x.concurrent.maxOpen} open, ${x.concurrent.errors} err, p99 ${fmtMs(x.concurrent.p99)}` : na);
    rows.push([`${bp?.concurrent.connections ?? mp?.concurrent.connections ?? 50} concurrent conns`, p, bp ? conc(bp) : 'n/a', conc(mp),
      bp && mp ? fmtRatio(mp.concurrent.rps, bp.concurrent.rps) : '']);
  }
  const out = [table(['figure', 'path', 'baseline (no mesh)', 'ambient', 'vs baseline'], rows)];
  if (d.meshError) out.push(`mesh lab: ${d.meshError}`);

  // CPU seconds per GiB moved, by process: the data path's cost, not just its speed.
  const cpuRows: string[][] = [];
  for (const [variant, l] of [['no mesh', b], ['mesh', m]] as const) {
    for (const p of l?.paths ?? []) {
      const entries = Object.entries(p.bulk.cpuSecondsPerGiB).sort((x, y) => y[1] - x[1]);
      const total = entries.reduce((a, [, s]) => a + s, 0);
      cpuRows.push([`${variant} ${p.path}`, total.toFixed(2), entries.slice(0, 5).map(([k, s]) => `${k} ${s.toFixed(2)}`).join(', ')]);
    }
  }
  if (cpuRows.length) out.push('', 'CPU during the bulk stream (CPU seconds per GiB delivered):', table(['lab path', 'total', 'by process (top 5)'], cpuRows));

  const memRows: string[][] = [];
  for (const [variant, l] of [['no mesh', b], ['mesh', m]] as const) {
    if (!l) continue;
    for (const p of l.memory.processes.filter((x) => x.role === 'ztunnel' || x.role === 'geneve')) {
      memRows.push([variant, p.id, fmtMiB(p.idleKb ?? NaN), fmtMiB(p.peakKb ?? NaN)]);
    }
    memRows.push([variant, `all ${l.memory.processes.length} lab processes`, fmtMiB(l.memory.totalIdleKb), fmtMiB(l.memory.totalPeakKb)]);
  }
  if (memRows.length) out.push('', 'Memory (VmRSS; peak = sampled every 200 ms during the load above):', table(['lab', 'process', 'idle', 'under load (peak)'], memRows));
  return out.join('\n');
}

/** The waypoint section: each figure without and with the waypoint, then the waypoint process itself. */
export function renderWaypoint(w: WaypointFigures | undefined, error?: string): string {
  if (!w) return `n/a: waypoint lab not available${error ? `: ${error}` : ''}`;
  const d = w.direct;
  const v = w.viaWaypoint;
  const rows: string[][] = [];
  const lat = (label: string, pick: (x: WaypointPathFigures) => LatencyFigure) => {
    for (const q of ['p50', 'p99'] as const) {
      const cell = (x: WaypointPathFigures) => fmtSpread(pick(x)[q], fmtMs) + (q === 'p50' ? errs(pick(x).errors) : '');
      rows.push([`${label} ${q}`, cell(d), cell(v), fmtDeltaMs(pick(v)[q].median, pick(d)[q].median)]);
    }
  };
  lat('new connection', (x) => x.newConnection);
  lat('kept alive', (x) => x.keepAlive);
  const conc = (c: ConcurrentFigure) => `${Math.round(c.rps)} req/s, ${c.maxOpen} open, ${c.errors} err, p99 ${fmtMs(c.p99)}`;
  rows.push([`${d.concurrent.connections} concurrent conns`, conc(d.concurrent), conc(v.concurrent), fmtRatio(v.concurrent.rps, d.concurrent.rps)]);
  const wpNode = `waypoint on ${w.waypoint.node}`;
  const out = [
    `${w.client} -> ${d.service} (${d.target}): ambient, no waypoint; -> ${v.service} (${v.target}): through ${w.waypoint.pod} (${wpNode})`,
    table(['figure', 'no waypoint', 'through the waypoint', 'waypoint adds'], rows),
    '',
    'Waypoint process (VmRSS; peak = sampled every 200 ms during the load above):',
    table(['process', 'idle', 'under load (peak)', 'after load', 'CPU per request'], [[
      w.waypoint.process, fmtMiB(w.memory.idleKb ?? NaN), fmtMiB(w.memory.peakKb ?? NaN), fmtMiB(w.memory.afterKb ?? NaN),
      w.cpuMsPerRequest === undefined ? 'n/a' : `${w.cpuMsPerRequest.toFixed(3)} ms`,
    ]]),
    `httpbin saw ${w.origins.waypoint} (the waypoint) through it and ${w.origins.direct} (the client) without; the waypoint counted ${w.waypointRequests.counted} requests of the ${w.waypointRequests.sent} sent through it`,
  ];
  return out.join('\n');
}

export function renderTargets(rows: BenchReport['targets']): string {
  return table(['target', 'measured', 'met?'], rows.map((t) => [t.target, t.measured, fmtMet(t.met, t.informational)]));
}

export function renderReport(r: BenchReport): string {
  const m = r.machine;
  return [
    `ambient-lab bench ${r.date}${r.quick ? ' (--quick)' : ''}: ${m.host}, ${m.cpuModel}, ${m.cores} cores, ${Math.round(m.memoryMiB / 1024)} GiB, kernel ${m.kernel}, node ${m.node}, Geneve ${m.geneve ?? 'n/a'}`,
    `load average ${m.loadAvg.start} at start, ${m.loadAvg.end} at end${Math.max(m.loadAvg.start, m.loadAvg.end) > m.cores ? ` (more than ${m.cores} cores: other work competed with the bench, figures are pessimistic)` : ''}`,
    '',
    // A part left out with --skip prints nothing rather than a table of n/a.
    ...(r.lifecycle.length ? ['## lab up / lab down (wall time of the CLI, median (min-max))', renderLifecycle(r), ''] : []),
    ...(r.datapath.baseline || r.datapath.mesh || r.datapath.meshError || r.datapath.baselineError
      ? ['## Data path: pod -> httpbin Service (median (min-max) over runs)', renderDatapath(r.datapath), ''] : []),
    ...(r.waypoint || r.waypointError ? ['## Waypoint: what it adds per request, same lab, same client (median (min-max) over runs)', renderWaypoint(r.waypoint, r.waypointError), ''] : []),
    ...(r.footprint || r.footprintError ? ['## Footprint: each lab up and idle (VmRSS; PSS splits the pages Node processes share)', renderFootprint(r.footprint, r.footprintError), ''] : []),
    ...(r.compare || r.compareError ? ['## Ambient against sidecars: the same workload in each mode (median (min-max) over runs)', renderCompare(r.compare, r.compareError), ''] : []),
    ...(r.load || r.loadError ? ['## Load: 1,000 concurrent connections and short requests through the proxies', renderLoad(r.load, r.loadError), ''] : []),
    ...(r.hops || r.hopsError ? ['## Where a new connection\'s time goes, hop by hop (SYN timeline of `lab trace`)', renderHops(r.hops, r.hopsError), ''] : []),
    '## Targets',
    renderTargets(r.targets),
    '',
    `(${r.durationS.toFixed(0)} s)`,
  ].join('\n');
}
