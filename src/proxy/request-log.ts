// Per-request access log lines of an L7 proxy (waypoint, sidecar), Envoy-style, from the L7
// engine's result and what the listener knew about the connection (peer identity, address).
import type { DownstreamInfo } from '../l7/engine.js';
import type { L7RequestResult } from '../l7/result.js';

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
