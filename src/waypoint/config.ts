/**
 * The waypoint process's configuration file (`--config <file>`, JSON), one per waypoint
 * Gateway. Like ztunnel's, it plays the part of xDS: the common proxy config (who it is, its
 * issued certificates, the workloads/Services/policies it knows) plus the waypoint's own L7
 * view, already converted from the Istio objects (src/l7/model.ts):
 *
 * ```jsonc
 * {
 *   "node": "node-a", "instanceIp": "10.244.0.6", "certDir": ".../certs/waypoint-default.reviews", ...
 *   "gateway": { "name": "reviews", "namespace": "default", "forServiceAccount": "bookinfo-reviews" },
 *   "identity": "spiffe://cluster.local/ns/default/sa/reviews-istio-waypoint",
 *   "httpPorts": { "reviews.default.svc.cluster.local": [9080] },   // Service ports spoken as HTTP
 *   "routes": [ ServiceRoutes... ], "destinationPolicies": [...], "l7Policies": [...]
 * }
 * ```
 */
import { loadProxyConfig, type ProxyConfig } from '../proxy/config.js';
import type { DestinationPolicy, L7AuthorizationPolicy, ServiceRoutes } from '../l7/model.js';
import type { ServicePort } from '../topology/types.js';

export interface WaypointPorts {
  /** 15008: HBONE, the only way in. */
  inbound: number;
  admin: number;
  stats: number;
  readiness: number;
}

export interface WaypointConfig extends ProxyConfig {
  gateway: { name: string; namespace: string; forServiceAccount?: string };
  /** The waypoint's own SPIFFE identity (spiffe://.../sa/<gateway>-istio-waypoint). */
  identity: string;
  /** Service hostname -> the ports of it that speak HTTP (everything else is proxied as TCP). */
  httpPorts: Record<string, number[]>;
  /** Pod IP -> its labels: DestinationRule subsets select endpoints by them. */
  podLabels: Record<string, Record<string, string>>;
  routes: ServiceRoutes[];
  destinationPolicies: DestinationPolicy[];
  l7Policies: L7AuthorizationPolicy[];
  listen?: Partial<WaypointPorts> & { host?: string };
}

/**
 * Istio's protocol selection for a Service port: `appProtocol`, else the port name's prefix
 * (`http`, `http-web`, `http2`, `grpc`). Anything else is opaque TCP to a waypoint.
 */
export function isHttpPort(p: Pick<ServicePort, 'name' | 'appProtocol'>): boolean {
  const proto = (p.appProtocol ?? (p.name ?? '').split('-')[0]).toLowerCase();
  return ['http', 'http2', 'grpc', 'grpc-web'].includes(proto);
}

export function loadWaypointConfig(file: string): { cfg: WaypointConfig; hash: string } {
  const r = loadProxyConfig<WaypointConfig>(file);
  const c = r.cfg;
  if (!c.gateway?.name || !c.identity) throw new Error(`${file}: "gateway" and "identity" are required`);
  c.httpPorts ??= {};
  c.podLabels ??= {};
  c.routes ??= [];
  c.destinationPolicies ??= [];
  c.l7Policies ??= [];
  return r;
}
