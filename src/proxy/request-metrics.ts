// Istio's standard HTTP metrics as an L7 proxy exports them (waypoint-and-sidecar.md §6):
// istio_requests_total and istio_request_duration_milliseconds with the standard label set.
// A waypoint reports as `destination` (ServerGateway is rendered like ServerSidecar in
// 1.18-1.20), with its own SAN as destination_principal.
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
