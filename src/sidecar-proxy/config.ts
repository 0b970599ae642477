/**
 * The sidecar proxy's configuration file (`--config <file>`, JSON), one per sidecar pod. Like
 * ztunnel's and the waypoint's, it plays the part of xDS: the common proxy config (who it is,
 * its issued certificates, the workloads/Services/policies of the mesh) plus what an Envoy
 * sidecar gets for its pod: the pod itself, the L7 view (routes, destination rules, the L7
 * policies that select the pod), its PeerAuthentication mode, and which peers speak HBONE.
 *
 * ```jsonc
 * {
 *   "node": "node-b", "instanceIp": "10.244.1.5" (the pod IP), "certDir": ".../certs/sidecar-default.productpage", ...
 *   "pod": { "name": "productpage", "namespace": "default", "serviceAccount": "bookinfo-productpage", "labels": {...} },
 *   "identity": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
 *   "hbone": true,                          // ambient profile: HBONE to HBONE-capable peers
 *   "httpPorts": { "reviews.default.svc.cluster.local": [9080] },
 *   "inboundPorts": [9080],                 // the app's ports (Service target ports of the pod)
 *   "mtls": { "mode": "PERMISSIVE", "ports": {} },
 *   "routes": [...], "destinationPolicies": [...], "l7Policies": [...], "podLabels": { "10.244.1.3": {...} }
 * }
 * ```
 */
import { loadProxyConfig, type ProxyConfig } from '../proxy/config.js';
import type { DestinationPolicy, L7AuthorizationPolicy, PeerAuthMode, ServiceRoutes } from '../l7/model.js';

export interface SidecarPorts {
  /** 15001: outbound, REDIRECTed by ISTIO_OUTPUT; original destination from SO_ORIGINAL_DST. */
  outbound: number;
  /** 15006: inbound plaintext or Istio mTLS, REDIRECTed by ISTIO_INBOUND. */
  inbound: number;
  /** 15008: HBONE termination (ztunnels, waypoints and other sidecars dial it); 0 when hbone is false (not listening). */
  hbone: number;
  /** 127.0.0.1:15000 /config_dump. */
  admin: number;
  /** 15090: Envoy's Prometheus endpoint. */
  stats: number;
  /** 15021: /healthz/ready. */
  readiness: number;
}

export interface SidecarConfig extends ProxyConfig {
  pod: { name: string; namespace: string; serviceAccount: string; labels: Record<string, string> };
  /** The pod's SPIFFE identity (spiffe://cluster.local/ns/<ns>/sa/<sa>). */
  identity: string;
  /** HBONE enabled for this proxy (the ambient profile's default); false: Istio mTLS to sidecar peers, plaintext to others. */
  hbone: boolean;
  /** Workload IPs of sidecar pods that do not speak HBONE (hbone: false): reached with Istio mTLS on the app port. */
  mtlsOnlyPeers: string[];
  /** Service hostname -> its ports that speak HTTP. */
  httpPorts: Record<string, number[]>;
  /** The ports the app in this pod listens on (its Services' target ports). */
  inboundPorts: number[];
  /** PeerAuthentication for this pod, resolved (workload > namespace > mesh). */
  mtls: { mode: Exclude<PeerAuthMode, 'UNSET'>; ports: Record<number, Exclude<PeerAuthMode, 'UNSET'>> };
  /** Pod IP -> labels (DestinationRule subsets). */
  podLabels: Record<string, Record<string, string>>;
  routes: ServiceRoutes[];
  destinationPolicies: DestinationPolicy[];
  /** The L7 AuthorizationPolicies whose selector matches this pod (its namespace's and mesh-wide). */
  l7Policies: L7AuthorizationPolicy[];
  listen?: Partial<SidecarPorts> & { host?: string };
}

export function loadSidecarConfig(file: string): { cfg: SidecarConfig; hash: string } {
  const r = loadProxyConfig<SidecarConfig>(file);
  const c = r.cfg;
  if (!c.pod?.name || !c.identity) throw new Error(`${file}: "pod" and "identity" are required`);
  c.hbone ??= true;
  c.mtlsOnlyPeers ??= [];
  c.httpPorts ??= {};
  c.inboundPorts ??= [];
  c.mtls ??= { mode: 'PERMISSIVE', ports: {} };
  c.podLabels ??= {};
  c.routes ??= [];
  c.destinationPolicies ??= [];
  c.l7Policies ??= [];
  return r;
}
