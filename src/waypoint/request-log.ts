// istio_requests_total labels of a waypoint, from the L7 engine's result and what the
// tunnel's CONNECT said (peer identity and address). The access log line's fields are the
// proxy core's (proxy/request-log.ts), shared with the sidecar.
import type { DownstreamInfo } from '../l7/engine.js';
import type { L7RequestResult } from '../l7/result.js';
import type { RequestLabels } from '../proxy/request-metrics.js';
import type { WaypointInputs } from './waypoint.js';

export { requestLogFields } from '../proxy/request-log.js';

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
