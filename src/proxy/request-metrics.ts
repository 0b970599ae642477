// Istio's standard HTTP metrics as an L7 proxy exports them (waypoint-and-sidecar.md §6):
// istio_requests_total and istio_request_duration_milliseconds with the standard label set.
// A waypoint reports as `destination` (ServerGateway is rendered like ServerSidecar in
// 1.18-1.20), with its own SAN as destination_principal. Beside them, Envoy's per-cluster
// upstream pool gauges (envoy_cluster_upstream_{cx,rq,rq_pending}_active), read at scrape time.
import type { EndpointUpstreamStats } from '../l7/upstream.js';
export const REQUEST_LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version',
  'source_canonical_service', 'source_canonical_revision', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace',
  'destination_canonical_service', 'destination_canonical_revision', 'destination_cluster',
  'request_protocol', 'response_flags', 'connection_security_policy', 'response_code', 'grpc_response_status',
] as const;

export type RequestLabels = Record<(typeof REQUEST_LABELS)[number], string>;

/** Istio's default buckets for istio_request_duration_milliseconds. */
const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (l: RequestLabels, extra = ''): string =>
  `{${REQUEST_LABELS.map((k) => `${k}="${escape(l[k])}"`).join(',')}${extra ? `,${extra}` : ''}}`;

interface Series {
  labels: RequestLabels;
  count: number;
  sum: number;
  buckets: number[];
}

export class RequestMetrics {
  private readonly series = new Map<string, Series>();

  record(labels: RequestLabels, durationMs: number): void {
    const key = REQUEST_LABELS.map((k) => labels[k]).join('\u0000');
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels: { ...labels }, count: 0, sum: 0, buckets: BUCKETS.map(() => 0) }));
    s.count++;
    s.sum += durationMs;
    BUCKETS.forEach((b, i) => { if (durationMs <= b) s!.buckets[i]++; });
  }

  render(): string {
    const out = ['# HELP istio_requests_total Total requests.', '# TYPE istio_requests_total counter'];
    for (const s of this.series.values()) out.push(`istio_requests_total${labelText(s.labels)} ${s.count}`);
    out.push('# HELP istio_request_duration_milliseconds Request duration.', '# TYPE istio_request_duration_milliseconds histogram');
    for (const s of this.series.values()) {
      BUCKETS.forEach((b, i) => out.push(`istio_request_duration_milliseconds_bucket${labelText(s.labels, `le="${b}"`)} ${s.buckets[i]}`));
      out.push(`istio_request_duration_milliseconds_bucket${labelText(s.labels, 'le="+Inf"')} ${s.count}`);
      out.push(`istio_request_duration_milliseconds_sum${labelText(s.labels)} ${Math.round(s.sum * 1000) / 1000}`);
      out.push(`istio_request_duration_milliseconds_count${labelText(s.labels)} ${s.count}`);
    }
    return out.join('\n') + '\n';
  }
}

/** What an engine's upstream pools hold now, and the Envoy cluster of an endpoint when one is known. */
export interface UpstreamGaugeSource {
  stats: readonly EndpointUpstreamStats[];
  /** The cluster every endpoint of this engine belongs to (a sidecar's inbound: `inbound|PORT||`); absent = not known. */
  cluster?(s: EndpointUpstreamStats): string;
}

const UPSTREAM_GAUGES = [
  ['envoy_cluster_upstream_cx_active', 'cxActive', 'Upstream connections open.'],
  ['envoy_cluster_upstream_rq_active', 'rqActive', 'Upstream requests on a connection, response not complete.'],
  ['envoy_cluster_upstream_rq_pending_active', 'rqPendingActive', 'Upstream requests waiting for a connection (per-endpoint bound reached, or connecting).'],
] as const;

/**
 * Envoy's per-cluster pool gauges, computed at scrape time from the engines' pools. The pools are
 * per endpoint, shared by every cluster that holds the endpoint (a Service's `outbound|9080||…`
 * and its subsets' `outbound|9080|v2|…` reach the same pod through one pool), so a series is per
 * endpoint, labelled `upstream_host="ip:port"`: a cluster_name label there would count one
 * connection under several clusters or pick one arbitrarily. Only where every endpoint of an
 * engine is one cluster (a sidecar's inbound to its app port) does the series carry cluster_name.
 */
export function renderUpstreamGauges(sources: readonly UpstreamGaugeSource[]): string {
  const series = new Map<string, EndpointUpstreamStats>();
  for (const src of sources) {
    for (const s of src.stats) {
      const cluster = src.cluster?.(s);
      const labels = `{${cluster !== undefined ? `cluster_name="${escape(cluster)}",` : ''}upstream_host="${escape(s.endpoint)}"}`;
      const sum = series.get(labels);
      if (sum) {
        sum.cxActive += s.cxActive;
        sum.rqActive += s.rqActive;
        sum.rqPendingActive += s.rqPendingActive;
      } else series.set(labels, { ...s });
    }
  }
  const out: string[] = [];
  for (const [name, key, help] of UPSTREAM_GAUGES) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, s] of series) out.push(`${name}${labels} ${s[key]}`);
  }
  return out.join('\n') + '\n';
}

/** The three gauges summed over some endpoints (a cluster's, in a config dump). */
export function sumUpstream(stats: readonly EndpointUpstreamStats[], endpoints: readonly string[]): { cxActive: number; rqActive: number; rqPendingActive: number } {
  const want = new Set(endpoints);
  const out = { cxActive: 0, rqActive: 0, rqPendingActive: 0 };
  for (const s of stats) {
    if (!want.has(s.endpoint)) continue;
    out.cxActive += s.cxActive;
    out.rqActive += s.rqActive;
    out.rqPendingActive += s.rqPendingActive;
  }
  return out;
}
