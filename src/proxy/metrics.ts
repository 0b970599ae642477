// Istio's standard TCP metrics as ztunnel exports them on :15020/metrics (Prometheus text).
// Direction of bytes follows Istio's definitions: received = request bytes (client ->
// server), sent = response bytes (server -> client).
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Refusals } from './refusals.js';

export const METRIC_LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal',
  'destination_workload', 'destination_workload_namespace', 'destination_principal',
  'destination_service', 'response_flags',
] as const;

export type MetricLabels = Record<(typeof METRIC_LABELS)[number], string>;

const COUNTERS = {
  istio_tcp_connections_opened_total: 'Total TCP connections opened',
  istio_tcp_connections_closed_total: 'Total TCP connections closed',
  istio_tcp_sent_bytes_total: 'Bytes sent in response to a TCP connection',
  istio_tcp_received_bytes_total: 'Bytes received in a request of a TCP connection',
  istio_tcp_connections_denied_total: 'TCP connections refused by L4 authorization (lab extension)',
} as const;

export type CounterName = keyof typeof COUNTERS;

const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

// How late the proxy's event loop ran since the previous scrape (reset on each render, as
// prom-client's nodejs_eventloop_lag does): a proxy that falls behind under load shows it here
// before its clients time out. One histogram per process, whatever the number of Metrics.
const LOOP_RESOLUTION_MS = 10;
let loopDelay: IntervalHistogram | undefined;

function loopDelayText(): string {
  const h = loopDelay;
  // The histogram records whole timer intervals: the delay is what exceeds the resolution.
  const late = (ns: number): number => (h && h.count > 0 ? Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1e3) : 0);
  const out = ['# HELP eventloop_delay_seconds Event-loop delay since the previous scrape (lab extension).', '# TYPE eventloop_delay_seconds gauge'];
  for (const [q, v] of [['0.5', h?.percentile(50)], ['0.99', h?.percentile(99)], ['max', h?.max]] as const) out.push(`eventloop_delay_seconds{quantile="${q}"} ${late(v ?? 0).toFixed(6)}`);
  h?.reset();
  return out.join('\n') + '\n';
}

export class Metrics {
  /** lab_refused_total: what listeners refused as malformed or over a limit (refusals.ts). */
  readonly refusals = new Refusals();
  private readonly series = new Map<CounterName, Map<string, { labels: MetricLabels; value: number }>>();

  constructor() {
    if (!loopDelay) {
      loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      loopDelay.enable();
    }
  }

  inc(name: CounterName, labels: MetricLabels, by = 1): void {
    let m = this.series.get(name);
    if (!m) this.series.set(name, (m = new Map()));
    const key = METRIC_LABELS.map((l) => labels[l]).join('\u0000');
    const s = m.get(key);
    if (s) s.value += by;
    else m.set(key, { labels: { ...labels }, value: by });
  }

  value(name: CounterName, match: Partial<MetricLabels> = {}): number {
    let total = 0;
    for (const s of this.series.get(name)?.values() ?? []) {
      if (Object.entries(match).every(([k, v]) => s.labels[k as keyof MetricLabels] === v)) total += s.value;
    }
    return total;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, help] of Object.entries(COUNTERS) as Array<[CounterName, string]>) {
      out.push(`# HELP ${name} ${help}.`, `# TYPE ${name} counter`);
      for (const s of this.series.get(name)?.values() ?? []) {
        const labels = METRIC_LABELS.map((l) => `${l}="${escape(s.labels[l])}"`).join(',');
        out.push(`${name}{${labels}} ${s.value}`);
      }
    }
    return out.join('\n') + '\n' + this.refusals.render() + loopDelayText();
  }
}

/** One series read back from Prometheus text: its labels and value. */
export interface ParsedSeries {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the series lines of Prometheus text (HELP/TYPE lines skipped), so tests and tools
 * can look for a series with given labels rather than for a metric name that a HELP line
 * prints even when nothing was ever counted.
 */
export function parseMetrics(text: string): ParsedSeries[] {
  const out: ParsedSeries[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the series of `name` whose labels include `match` (0 when there is none). */
export function seriesValue(text: string, name: string, match: Record<string, string> = {}): number {
  return parseMetrics(text)
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}
