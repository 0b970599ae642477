// One result per HTTP request, the L7 twin of ztunnel's per-connection result: the proxy core
// turns it into the access log line and istio_requests_total / istio_request_duration_milliseconds.
// Response flags are written as Envoy writes them: '-' for none, else comma-separated in
// Envoy's fixed order (so "UF,URX", never "URX,UF").
import type { ResponseFlag } from './model.js';

/** Envoy's order of response flags in %RESPONSE_FLAGS% (ResponseFlagUtils). */
const FLAG_ORDER = ['UH', 'UT', 'UF', 'UC', 'NR', 'DI', 'FI', 'DC', 'URX', 'NC'];

export type EngineFlag = Exclude<ResponseFlag, '-' | 'RBAC'>;

export function formatFlags(flags: Iterable<EngineFlag>): string {
  const set = [...new Set(flags)];
  if (set.length === 0) return '-';
  return set.sort((a, b) => FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b)).join(',');
}

/** Bodies of Envoy's local replies (waypoint-and-sidecar.md §1, §2; "Not confirmed" for the router ones). */
export const LOCAL_REPLY = {
  rbac: 'RBAC: access denied',
  faultAbort: 'fault filter abort',
  timeout: 'upstream request timeout',
  noHealthyUpstream: 'no healthy upstream',
  connectFailure: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  connectionTermination: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
} as const;

export interface L7RequestResult {
  /** Wall-clock start, ms since the epoch. */
  startTime: number;
  method: string;
  /** :path as the client sent it (query included). */
  path: string;
  /** Host header as the client sent it. */
  authority: string;
  requestId?: string;
  userAgent?: string;
  /** Status sent downstream; 0 when nothing was sent (client went away first). */
  status: number;
  /** Envoy %RESPONSE_FLAGS%: '-', 'UF', 'UT,URX', ... */
  responseFlags: string;
  /** Envoy %RESPONSE_CODE_DETAILS%: via_upstream, rbac_access_denied, fault_filter_abort, route_not_found, ... */
  responseCodeDetails: string;
  /** RBAC: the deciding policy's origin, when one decided. */
  authzPolicy?: string;
  /** Destination Service FQDN and port the request was routed for. */
  service?: { host: string; port: number };
  route?: { origin: string; index: number } | { origin: 'default'; index: -1 };
  backend?: { host: string; port: number; subset?: string; weightPercent: number };
  /** Envoy %UPSTREAM_CLUSTER%. */
  upstreamCluster?: string;
  /** Envoy %UPSTREAM_HOST%: endpoint ip:port of the last attempt. */
  upstreamHost?: string;
  /** Upstream attempts made (first try + retries); 0 when the request never went upstream. */
  attempts: number;
  /** Envoy's x-envoy-upstream-service-time of the answering attempt. */
  upstreamServiceTimeMs?: number;
  durationMs: number;
  /** Request body bytes received from downstream. */
  bytesReceived: number;
  /** Response body bytes sent downstream. */
  bytesSent: number;
  /** Delay injected by the fault filter. */
  faultDelayMs?: number;
}
