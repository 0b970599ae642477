// Per-request access log lines and istio_requests_total labels of a waypoint, from the L7
// engine's result and what the tunnel's CONNECT said (peer identity and address).
import type { DownstreamInfo } from '../l7/engine.js';
import type { L7RequestResult } from '../l7/result.js';
import type { RequestLabels } from '../proxy/request-metrics.js';
import type { WaypointInputs } from './waypoint.js';

/** Envoy-style fields: what a learner reads in `lab logs <waypoint>`. */
export function requestLogFields(r: L7RequestResult, info: DownstreamInfo): Record<string, unknown> {
  const f: Record<string, unknown> = {
    method: r.method, path: r.path, authority: r.authority, status: r.status, response_flags: r.responseFlags,
    response_code_details: r.responseCodeDetails, 'src.addr': info.srcIp,
  };
  if (info.srcPrincipal) f['src.identity'] = `spiffe://${info.srcPrincipal}`;
  if (r.service) f['dst.service'] = `${r.service.host}:${r.service.port}`;
  if (r.route) f.route = `${r.route.origin}${r.route.index >= 0 ? ` rule ${r.route.index}` : ''}`;
  if (r.backend) f.backend = `${r.backend.host}:${r.backend.port}${r.backend.subset ? ` subset ${r.backend.subset}` : ''} (${r.backend.weightPercent}%)`;
  if (r.upstreamCluster) f.upstream_cluster = r.upstreamCluster;
  if (r.upstreamHost) f.upstream_host = r.upstreamHost;
  if (r.authzPolicy) f.policy = r.authzPolicy;
  Object.assign(f, { attempts: r.attempts, duration_ms: Math.round(r.durationMs * 100) / 100, bytes_received: r.bytesReceived, bytes_sent: r.bytesSent });
  if (r.faultDelayMs) f.fault_delay_ms = r.faultDelayMs;
  if (r.requestId) f.request_id = r.requestId;
  return f;
}

/** The standard labels as a waypoint (reporter destination, its own SAN as destination_principal) sets them. */
export function requestLabels(z: WaypointInputs, r: L7RequestResult, info: DownstreamInfo): RequestLabels {
  const { store } = z.xds.snapshot;
  const src = store.workload(info.srcIp);
  const dstIp = r.upstreamHost?.replace(/:\d+$/, '');
  const dst = dstIp ? store.workload(dstIp) : undefined;
  const svc = r.service ? store.state.services.find((s) => s.hostname === r.service!.host) : undefined;
  const u = 'unknown';
  return {
    reporter: 'destination',
    source_workload: src?.workloadName ?? u,
    source_workload_namespace: src?.namespace ?? info.srcNamespace ?? u,
    source_principal: info.srcPrincipal ? `spiffe://${info.srcPrincipal}` : u,
    source_app: src?.canonicalName ?? u,
    source_version: src?.canonicalRevision ?? u,
    source_canonical_service: src?.canonicalName ?? u,
    source_canonical_revision: src?.canonicalRevision ?? u,
    source_cluster: src?.clusterId ?? u,
    destination_workload: dst?.workloadName ?? u,
    // ServerGateway: the waypoint's namespace, app/version unknown (reference §6).
    destination_workload_namespace: z.cfg.gateway.namespace,
    destination_principal: z.cfg.identity,
    destination_app: u,
    destination_version: u,
    destination_service: svc?.hostname ?? r.service?.host ?? u,
    destination_service_name: svc?.name ?? u,
    destination_service_namespace: z.cfg.gateway.namespace,
    destination_canonical_service: dst?.canonicalName ?? u,
    destination_canonical_revision: dst?.canonicalRevision ?? u,
    destination_cluster: dst?.clusterId ?? u,
    request_protocol: 'http',
    response_flags: r.responseFlags,
    connection_security_policy: info.srcPrincipal ? 'mutual_tls' : 'none',
    response_code: String(r.status),
    grpc_response_status: '',
  };
}
