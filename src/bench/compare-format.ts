// The comparison section for the terminal (and bench/README.md): one row per data-path mode,
// then HBONE against Istio mTLS between the same two sidecars, and the proxies' memory. Pure.
import { table } from '../cli/output.js';
import type { CompareFigures, CompareRow } from './compare.js';
import type { LoadFigures } from './load-1k.js';
import type { HopFigures } from './compare-hops.js';
import type { GroupedBars } from './svg-chart.js';
import { fmtMs, fmtMiB, fmtMbit, fmtSpread, fmtRatio, fmtDeltaMs } from './format-units.js';

const errsOf = (r: CompareRow): number => r.newConnection.errors + r.keepAlive.errors + r.concurrent.errors + (r.bulk.error ? 1 : 0);

export function compareTableRows(rows: readonly CompareRow[]): string[][] {
  return rows.map((r) => [
    r.label, r.placement,
    fmtSpread(r.newConnection.p50, fmtMs), fmtSpread(r.newConnection.p99, fmtMs),
    fmtSpread(r.keepAlive.p50, fmtMs), fmtSpread(r.keepAlive.p99, fmtMs),
    fmtSpread(r.bulk.mbitPerS, fmtMbit),
    `${Math.round(r.concurrent.rps)} req/s`,
    Number.isFinite(r.cpu.per1kRequests) ? `${r.cpu.per1kRequests.toFixed(2)} s` : 'n/a',
    fmtMiB(r.memory.idle.perPodKb), fmtMiB(r.memory.idle.pathKb),
    String(errsOf(r)),
  ]);
}

export const COMPARE_HEADERS = ['mode', 'path', 'new conn p50', 'new conn p99', 'kept alive p50', 'kept alive p99', 'one stream',
  'concurrent', 'CPU / 1k req', 'proxy RSS / pod', 'proxies on path', 'errors'];

/** Each mode against another in the same placement: latency differences, throughput and memory ratios. */
export function versus(a: CompareRow, b: CompareRow): string {
  return `${a.label} vs ${b.label} (${a.placement}): new connection p50 ${fmtDeltaMs(a.newConnection.p50.median, b.newConnection.p50.median)}, `
    + `kept alive p50 ${fmtDeltaMs(a.keepAlive.p50.median, b.keepAlive.p50.median)}, one stream ${fmtRatio(a.bulk.mbitPerS.median, b.bulk.mbitPerS.median)}, `
    + `CPU per request ${fmtRatio(a.cpu.per1kRequests, b.cpu.per1kRequests)}, proxy memory per pod ${fmtRatio(a.memory.idle.perPodKb, b.memory.idle.perPodKb)}`;
}

export function renderCompare(c: CompareFigures | undefined, error?: string): string {
  if (!c) return `n/a: comparison lab not available${error ? `: ${error}` : ''}`;
  const out = [table(COMPARE_HEADERS, compareTableRows(c.rows))];
  const find = (mode: string, placement: string) => c.rows.find((r) => r.mode === mode && r.placement === placement);
  const lines: string[] = [];
  for (const placement of new Set(c.rows.map((r) => r.placement))) {
    for (const [a, b] of [['sidecar', 'sidecar-mtls'], ['sidecar', 'ambient'], ['ambient', 'none'], ['waypoint', 'ambient']]) {
      const x = find(a, placement);
      const y = find(b, placement);
      if (x && y) lines.push(versus(x, y));
    }
  }
  out.push('', ...lines);
  out.push('', `Proxies (VmRSS idle / peak under the load above; ambient pods per node: ${Object.entries(c.ambientPodsPerNode).map(([n, k]) => `${n} ${k}`).join(', ')}):`,
    table(['proxy', 'idle', 'peak'], c.proxies.map((p) => [p.id, fmtMiB(p.idleKb ?? NaN), fmtMiB(p.peakKb ?? NaN)])));
  const firstErrors = c.rows.flatMap((r) => [r.newConnection.firstError, r.keepAlive.firstError, r.concurrent.firstError, r.bulk.error]
    .filter((e): e is string => !!e).slice(0, 1).map((e) => `${r.label} (${r.placement}): ${e}`));
  if (firstErrors.length) out.push('', 'First error per mode:', ...firstErrors);
  return out.join('\n');
}

/** bench/compare.svg's content: p50 latencies, one stream, CPU and memory per mode, for one placement. */
export function compareChart(c: CompareFigures, placement = 'cross-node', subtitle?: string): GroupedBars {
  const rows = c.rows.filter((r) => r.placement === placement);
  return {
    title: `The same client -> httpbin Service in each data-path mode (${placement})`,
    ...(subtitle ? { subtitle } : {}),
    series: rows.map((r) => r.label),
    panels: [
      { title: 'new conn p50 (ms)', values: rows.map((r) => r.newConnection.p50.median) },
      { title: 'kept alive p50 (ms)', values: rows.map((r) => r.keepAlive.p50.median) },
      { title: 'one stream (Mbit/s)', values: rows.map((r) => r.bulk.mbitPerS.median) },
      { title: 'CPU s / 1k req', values: rows.map((r) => r.cpu.per1kRequests) },
      { title: 'proxy MB / pod', values: rows.map((r) => r.memory.idle.perPodKb / 1024) },
    ],
  };
}

/** The load section: per phase, what the client saw and what each proxy on the path held and logged. */
export function renderLoad(l: LoadFigures | undefined, error?: string): string {
  if (!l) return `n/a: load lab not available${error ? `: ${error}` : ''}`;
  const rows: string[][] = [];
  for (const ph of l.phases) {
    const what = ph.kind === 'concurrent' ? `${l.options.connections} conns x ${l.options.seconds} s` : `${l.options.shortRequests} short (${l.options.shortConcurrency} at a time)`;
    const c = ph.client;
    const clientCell = `${c.requests} ok, ${c.errors} err, ${Math.round(c.rps)} req/s${c.maxOpen !== undefined ? `, ${c.maxOpen} open` : ''}, p99 ${fmtMs(c.p99)}`;
    ph.proxies.forEach((p, i) => {
      const ld = p.loopDelayMs;
      rows.push([
        i === 0 ? ph.path : '', i === 0 ? what : '', i === 0 ? clientCell : '', p.id,
        `${p.fds.idle} / ${p.fds.peak} / ${p.fds.after}`,
        `${fmtMiB(p.rssKb.idle)} / ${fmtMiB(p.rssKb.peak)} / ${fmtMiB(p.rssKb.after)}`,
        ld ? `${fmtMs(ld.p99)} / ${fmtMs(ld.max)}` : 'n/a',
        String(p.connectionsOpened), String(p.failures.failed + p.failures.endedOnError),
      ]);
    });
    rows.push(['', '', `fds settled: ${ph.settled ? `${(ph.settledMs / 1000).toFixed(1)} s` : 'NO'}; unexplained errors: ${ph.unexplainedErrors}`, '', '', '', '', '', '']);
  }
  const out = [table(['path', 'load', 'client', 'proxy', 'fds idle / peak / after', 'RSS idle / peak / after', 'loop delay p99 / max', 'conns counted', 'failures logged'], rows)];
  const kinds = l.phases.flatMap((ph) => [...Object.entries(ph.client.errorKinds).map(([k, n]) => `${ph.path} ${ph.kind}: client ${n}x ${k}`),
    ...ph.proxies.flatMap((p) => Object.entries(p.failures.reasons).map(([k, n]) => `${ph.path} ${ph.kind}: ${p.id} ${n}x ${k}`))]);
  if (kinds.length) out.push('', 'Errors and failures by kind:', ...kinds.slice(0, 20));
  return out.join('\n');
}

const fmtUs = (us: number): string => fmtMs(us / 1000);

/** Per path: each segment of the SYN timeline, cold (new HBONE connections) and warm (pooled). */
export function renderHops(h: HopFigures | undefined, error?: string): string {
  if (!h) return `n/a: hop breakdown not available${error ? `: ${error}` : ''}`;
  const out: string[] = [];
  for (const p of h.paths) {
    const names = [...p.cold.segments.map((s) => s.what), ...p.warm.segments.map((s) => s.what).filter((w) => !p.cold.segments.some((s) => s.what === w))];
    const cell = (b: { segments: Array<{ what: string; us: number }> }, w: string) => {
      const s = b.segments.find((x) => x.what === w);
      return s ? fmtUs(s.us) : '';
    };
    out.push(`${p.path === 'direct' ? 'sleep -> httpbin (ztunnel pair)' : 'sleep -> httpbin-wp (through the waypoint)'}: ${p.target}`,
      table(['segment', 'cold (first trace)', `warm (median of ${p.warm.runs})`], [
        ...names.map((w) => [w, cell(p.cold, w), cell(p.warm, w)]),
        ['client SYN -> server SYN', fmtUs(p.cold.totalUs), fmtUs(p.warm.totalUs)],
      ]), '');
  }
  return out.join('\n').trimEnd();
}
