// The project's performance targets, checked against one bench run. Pure.
import type { BenchReport, TargetRow, Growth } from './report.js';
import type { LabFigures, PathName } from './datapath.js';
import type { LifecycleFigures } from './lifecycle.js';
import { fmtMs, fmtMiB, fmtDeltaMs } from './format-units.js';
import type { FootprintFigures } from './footprint.js';

export const TARGETS = {
  /** Issue 14's interactivity targets: demo and three-node `lab up`, 20x10, `lab exec`. */
  demoUpMs: 1000,
  demoDownMs: 1000,
  threeNodeUpMs: 2000,
  bigUpMs: 10_000,
  execMs: 150,
  /** 20x10 over 10x10: twice the pods and nodes should cost at most this factor. */
  linearDoublingMax: 2.2,
  /** Issue 14's data-path targets, cross-node unless named: added p50 of a new connection and of a kept-alive request. */
  addedP50Ms: 1,
  keptAliveAddedP50Ms: 0.2,
  /** One bulk stream, as a share of the no-mesh speed of the same path in the same run. */
  throughputShare: { 'cross-node': 0.3, 'same-node': 0.5 },
  /** CPU-seconds the two ztunnels spend per GiB of one bulk stream cross-node. */
  ztunnelPairCpuPerGiB: 3,
  // Footprint (issue 14): memory at rest, VmRSS as `lab status --json` lists the processes.
  ztunnelIdleMiB: 50,
  threeNodeTotalMiB: 600,
  genevePerNodeMiB: 40,
  /** A waypoint or a sidecar proxy, at rest. */
  proxyMiB: 60,
  bookinfoTotalMiB: 1024,
  /** Informational until issue 14 sets the waypoint targets. */
  waypointAddedP50Ms: 2,
} as const;

const NA_MESH = 'n/a: mesh not available';
const NOT_RUN = 'n/a: not run (--skip)';

function pathOf(l: LabFigures | undefined, p: PathName) {
  return l?.paths.find((x) => x.path === p);
}

export function evaluateTargets(r: Pick<BenchReport, 'lifecycle' | 'growth' | 'datapath' | 'waypoint' | 'waypointError' | 'footprint' | 'footprintError'>): TargetRow[] {
  const rows: TargetRow[] = [];
  // A part left out with --skip is "not run", not a mesh that failed to come up.
  const naLife = r.lifecycle.length ? NA_MESH : NOT_RUN;
  const naData = r.datapath.baseline || r.datapath.mesh || r.datapath.meshError || r.datapath.baselineError ? NA_MESH : NOT_RUN;
  const demo = r.lifecycle.find((c) => c.label === 'demo');
  const three = r.lifecycle.find((c) => c.label === 'three-node');
  const big = r.lifecycle.find((c) => c.label === '20x10');
  const lt = (v: number | undefined, limit: number, fmt: (n: number) => string): Omit<TargetRow, 'target'> =>
    v === undefined || !Number.isFinite(v) ? { measured: naLife } : { measured: fmt(v), met: v < limit };

  rows.push({ target: `demo lab up (mesh) < ${fmtMs(TARGETS.demoUpMs)}`, ...lt(demo?.mesh?.upWallMs.median, TARGETS.demoUpMs, fmtMs) });
  rows.push({ target: `demo lab down (mesh) < ${fmtMs(TARGETS.demoDownMs)}`, ...lt(demo?.mesh?.downWallMs.median, TARGETS.demoDownMs, fmtMs) });
  rows.push({ target: `three-node lab up (mesh) < ${fmtMs(TARGETS.threeNodeUpMs)}`, ...lt(three?.mesh?.upWallMs.median, TARGETS.threeNodeUpMs, fmtMs) });
  rows.push(bigUpRow(big, r.growth.find((g) => g.variant === 'mesh'), naLife));
  rows.push({ target: `lab exec POD -- true < ${fmtMs(TARGETS.execMs)}`, ...lt(demo?.mesh?.execWallMs?.median ?? demo?.noMesh.execWallMs?.median, TARGETS.execMs, fmtMs) });

  const base = r.datapath.baseline;
  const mesh = r.datapath.mesh;
  const bCross = pathOf(base, 'cross-node');
  const mCross = pathOf(mesh, 'cross-node');
  const added = (what: 'newConnection' | 'keepAlive', limit: number, label: string): TargetRow => {
    const target = `ambient cross-node ${label} p50 added < ${limit} ms`;
    if (!bCross || !mCross) return { target, measured: naData };
    const m = mCross[what].p50.median;
    const b = bCross[what].p50.median;
    return { target, measured: `+${(m - b).toFixed(2)} ms (${m.toFixed(2)} vs ${b.toFixed(2)} ms)`, met: m - b < limit };
  };
  rows.push(added('newConnection', TARGETS.addedP50Ms, 'new-connection'));
  rows.push(added('keepAlive', TARGETS.keptAliveAddedP50Ms, 'kept-alive request'));

  for (const p of ['cross-node', 'same-node'] as const) {
    const b = pathOf(base, p);
    const m = pathOf(mesh, p);
    const want = TARGETS.throughputShare[p];
    const target = `ambient ${p} one stream >= ${want * 100}% of baseline`;
    if (!b || !m) {
      rows.push({ target, measured: naData });
      continue;
    }
    const share = m.bulk.mbitPerS.median / b.bulk.mbitPerS.median;
    rows.push({ target, measured: `${(share * 100).toFixed(1)}% (${Math.round(m.bulk.mbitPerS.median)} vs ${Math.round(b.bulk.mbitPerS.median)} Mbit/s)`, met: share >= want });
  }

  const cpuTarget = `ztunnel pair CPU per GiB (one stream, cross-node) <= ${TARGETS.ztunnelPairCpuPerGiB} s`;
  // Keyed by process id (`ztunnel/node-a`): the pair is the two ztunnels the stream crossed.
  const zt = Object.entries(mCross?.bulk.cpuSecondsPerGiB ?? {}).filter(([id, v]) => id.startsWith('ztunnel/') && Number.isFinite(v));
  if (!zt.length) rows.push({ target: cpuTarget, measured: naData });
  else {
    const pair = zt.reduce((a, [, v]) => a + v, 0);
    rows.push({
      target: cpuTarget,
      measured: `${pair.toFixed(2)} s/GiB (${zt.map(([id, v]) => `${id} ${v.toFixed(2)}`).join(', ')})`,
      met: pair <= TARGETS.ztunnelPairCpuPerGiB,
    });
  }

  for (const p of ['cross-node', 'same-node'] as const) {
    const m = pathOf(mesh, p);
    const target = `ambient ${p}: 50 concurrent connections, no errors`;
    if (!m) rows.push({ target, measured: naData });
    else {
      const c = m.concurrent;
      const ok = c.errors === 0 && c.droppedEarly === 0 && c.maxOpen >= c.connections;
      rows.push({ target, measured: `${c.maxOpen} open, ${c.errors} errors, ${c.droppedEarly} dropped, ${Math.round(c.rps)} req/s`, met: ok });
    }
  }

  rows.push(ztunnelIdleRow(r, naData));
  rows.push(...footprintRows(r));
  rows.push(waypointRow(r));
  return rows;
}

/** The largest ztunnel at rest: from the footprint's three-node lab, else from the data-path lab. */
function ztunnelIdleRow(r: Pick<BenchReport, 'datapath' | 'footprint'>, naData: string): TargetRow {
  const target = `ztunnel RSS idle <= ${TARGETS.ztunnelIdleMiB} MB`;
  const fp = r.footprint?.find((f) => f.label === 'three-node')?.processes.filter((p) => p.role === 'ztunnel').map((p) => p.rssKb) ?? [];
  const dp = r.datapath.mesh?.memory.processes.filter((p) => p.role === 'ztunnel' && p.idleKb !== undefined).map((p) => p.idleKb!) ?? [];
  const [kbs, where] = fp.length ? [fp, 'three-node lab'] : [dp, 'data-path lab'];
  if (!kbs.length) return { target, measured: naData };
  const worst = Math.max(...kbs);
  return { target, measured: `${fmtMiB(worst)} (largest of ${kbs.length}, ${where})`, met: worst / 1024 <= TARGETS.ztunnelIdleMiB };
}

/** Memory at rest of the three-node and bookinfo labs (the footprint section). */
export function footprintRows(r: Pick<BenchReport, 'footprint' | 'footprintError'>): TargetRow[] {
  const na = r.footprintError ? `n/a: footprint lab not available: ${r.footprintError}` : r.footprint ? NA_MESH : NOT_RUN;
  const lab = (label: FootprintFigures['label']) => r.footprint?.find((f) => f.label === label);
  const total = (f: FootprintFigures | undefined, limitMiB: number, what: string): TargetRow => {
    const target = `${what} RSS at rest < ${limitMiB >= 1024 ? `${limitMiB / 1024} GB` : `${limitMiB} MB`}`;
    if (!f) return { target, measured: na };
    return { target, measured: `${fmtMiB(f.totalRssKb)} in ${f.processes.length} processes (PSS ${fmtMiB(f.totalPssKb)})`, met: f.totalRssKb / 1024 < limitMiB };
  };
  const three = lab('three-node');
  const bookinfo = lab('bookinfo');
  const rows = [total(three, TARGETS.threeNodeTotalMiB, 'three-node ambient lab')];

  const gTarget = `userspace Geneve <= ${TARGETS.genevePerNodeMiB} MB per node`;
  const geneve = three?.processes.filter((p) => p.role === 'geneve') ?? [];
  if (!three) rows.push({ target: gTarget, measured: na });
  else if (three.tunnel !== 'userspace' || !geneve.length) rows.push({ target: gTarget, measured: `n/a: Geneve ${three.tunnel ?? 'none'} (no userspace daemon)` });
  else {
    const perNode = geneve.reduce((a, p) => a + p.rssKb, 0) / three.nodes;
    rows.push({ target: gTarget, measured: `${fmtMiB(perNode)} per node (${geneve.length} ${geneve.length === 1 ? 'daemon' : 'daemons'} for ${three.nodes} nodes)`, met: perNode / 1024 <= TARGETS.genevePerNodeMiB });
  }

  const pTarget = `waypoint and sidecar proxy RSS <= ${TARGETS.proxyMiB} MB`;
  const proxies = bookinfo?.processes.filter((p) => p.role === 'waypoint' || p.role === 'sidecar') ?? [];
  if (!proxies.length) rows.push({ target: pTarget, measured: bookinfo ? 'n/a: no waypoint or sidecar in the bookinfo lab' : na });
  else {
    const worst = Math.max(...proxies.map((p) => p.rssKb));
    const each = ['waypoint', 'sidecar'].map((role) => {
      const kb = proxies.filter((p) => p.role === role).map((p) => fmtMiB(p.rssKb).replace(' MB', ''));
      return kb.length ? `${role} ${kb.join('/')} MB` : '';
    }).filter(Boolean).join(', ');
    rows.push({ target: pTarget, measured: `${each} (bookinfo lab)`, met: worst / 1024 <= TARGETS.proxyMiB });
  }
  rows.push(total(bookinfo, TARGETS.bookinfoTotalMiB, 'bookinfo lab (waypoint, two sidecars)'));
  return rows;
}

/** The waypoint's added p50 per new request (new connection each), against the same lab's Service without one. */
export function waypointRow(r: Pick<BenchReport, 'waypoint' | 'waypointError'>): TargetRow {
  const target = `waypoint adds < ${TARGETS.waypointAddedP50Ms} ms p50 per new request`;
  const w = r.waypoint;
  if (!w) return { target, measured: r.waypointError ? 'n/a: waypoint lab not available' : NOT_RUN, informational: true };
  const withWp = w.viaWaypoint.newConnection.p50.median;
  const without = w.direct.newConnection.p50.median;
  const added = withWp - without;
  if (!Number.isFinite(added)) return { target, measured: 'n/a: no successful requests', informational: true };
  // Failed requests do not count in a p50, so they are named and fail the row.
  const errors = w.viaWaypoint.newConnection.errors + w.viaWaypoint.keepAlive.errors;
  return {
    target,
    measured: `${fmtDeltaMs(withWp, without)} (${withWp.toFixed(2)} vs ${without.toFixed(2)} ms); kept alive ${fmtDeltaMs(w.viaWaypoint.keepAlive.p50.median, w.direct.keepAlive.p50.median)}`
      + (errors ? `; ${errors} failed requests through the waypoint` : ''),
    met: added < TARGETS.waypointAddedP50Ms && errors === 0,
    informational: true,
  };
}

function bigUpRow(big: LifecycleFigures | undefined, growth: Growth | undefined, na: string): TargetRow {
  const target = `20x10 lab up (mesh) < ${fmtMs(TARGETS.bigUpMs)}, linear growth`;
  if (!big) return { target, measured: na === NOT_RUN ? NOT_RUN : 'n/a: not run (--quick or --skip scale)' };
  if (!big.mesh) return { target, measured: na };
  const t = big.mesh.upWallMs.median;
  const ratio = growth?.doublingRatio;
  const linear = ratio === undefined || ratio <= TARGETS.linearDoublingMax;
  return {
    target,
    measured: `${fmtMs(t)}${ratio === undefined ? '' : `, x${ratio.toFixed(2)} for 2x size`}`,
    met: t < TARGETS.bigUpMs && linear,
  };
}
