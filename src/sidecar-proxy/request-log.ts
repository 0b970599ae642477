// A sidecar's per-request access log line and istio_requests_total labels: the client-side
// view (reporter source, on 15001) and the server-side view (reporter destination, on 15006
// and 15008), as an Envoy sidecar's istio.stats filter reports them.
import type { DownstreamInfo } from '../l7/engine.js';
import type { L7RequestResult } from '../l7/result.js';
import { formatSpiffe } from '../mesh/identity.js';
import { workloadIdentity, type Service, type Workload, type WorkloadStore } from '../mesh/workloads.js';
import { requestLogFields } from '../proxy/request-log.js';
import type { RequestLabels } from '../proxy/request-metrics.js';
import type { SidecarConfig } from './config.js';

export type Reporter = 'source' | 'destination';

export function sidecarRequestLogFields(reporter: Reporter, r: L7RequestResult, info: DownstreamInfo, service?: string): Record<string, unknown> {
  const f: Record<string, unknown> = { direction: reporter === 'source' ? 'outbound' : 'inbound', ...requestLogFields(r, info) };
  if (!f['dst.service'] && service) f['dst.service'] = service;
  return f;
}

/** The Service of a pod port: the one with this pod behind it that maps some port to `targetPort`. */
export function serviceOfPodPort(store: WorkloadStore, podIp: string, targetPort: number): { service: Service; port: number } | undefined {
  for (const s of store.state.services) {
    if (!s.endpoints.includes(podIp)) continue;
    const p = Object.entries(s.ports).find(([, t]) => t === targetPort);
    if (p) return { service: s, port: Number(p[0]) };
  }
  return undefined;
}

/** Is a connection to podIp:targetPort HTTP? When its Service port is (config httpPorts). */
export function isHttpPodPort(cfg: Pick<SidecarConfig, 'httpPorts'>, store: WorkloadStore, podIp: string, targetPort: number): boolean {
  return store.state.services.some((s) => s.endpoints.includes(podIp)
    && Object.entries(s.ports).some(([p, t]) => t === targetPort && (cfg.httpPorts[s.hostname] ?? []).includes(Number(p))));
}

const u = 'unknown';

function side(prefix: 'source' | 'destination', w: Workload | undefined, principal: string | undefined, ns?: string): Record<string, string> {
  const o: Record<string, string> = {
    [`${prefix}_workload`]: w?.workloadName ?? u,
    [`${prefix}_workload_namespace`]: w?.namespace ?? ns ?? u,
    [`${prefix}_principal`]: principal ?? u,
    [`${prefix}_app`]: w?.canonicalName ?? u,
    [`${prefix}_version`]: w?.canonicalRevision ?? u,
    [`${prefix}_canonical_service`]: w?.canonicalName ?? u,
    [`${prefix}_canonical_revision`]: w?.canonicalRevision ?? u,
    [`${prefix}_cluster`]: w?.clusterId ?? u,
  };
  return o;
}

export interface LabelInput {
  reporter: Reporter;
  store: WorkloadStore;
  /** This sidecar's pod and identity. */
  self: Workload | undefined;
  selfIdentity: string;
  r: L7RequestResult;
  info: DownstreamInfo;
  /** Destination Service FQDN when the engine did not route by one (inbound). */
  service?: string;
  /** Outbound: the upstream spoke mTLS (HBONE or Istio mTLS), so its identity is known. */
  upstreamSecure?: boolean;
}

export function sidecarRequestLabels(x: LabelInput): RequestLabels {
  const host = x.r.service?.host ?? x.service;
  const svc = host ? x.store.state.services.find((s) => s.hostname === host) : undefined;
  let src: Record<string, string>;
  let dst: Record<string, string>;
  if (x.reporter === 'source') {
    const upIp = x.r.upstreamHost?.replace(/:\d+$/, '');
    const up = upIp ? x.store.workload(upIp) : undefined;
    src = side('source', x.self, x.selfIdentity);
    dst = side('destination', up, up && x.upstreamSecure ? formatSpiffe(workloadIdentity(up)) : undefined);
  } else {
    src = side('source', x.store.workload(x.info.srcIp), x.info.srcPrincipal ? `spiffe://${x.info.srcPrincipal}` : undefined, x.info.srcNamespace);
    dst = side('destination', x.self, x.selfIdentity);
  }
  return {
    reporter: x.reporter,
    ...src,
    ...dst,
    destination_service: svc?.hostname ?? host ?? u,
    destination_service_name: svc?.name ?? u,
    destination_service_namespace: svc?.namespace ?? u,
    request_protocol: 'http',
    response_flags: x.r.responseFlags,
    // Envoy knows the connection's security only on the server side.
    connection_security_policy: x.reporter === 'source' ? u : x.info.srcPrincipal ? 'mutual_tls' : 'none',
    response_code: String(x.r.status),
    grpc_response_status: '',
  } as RequestLabels;
}
