// How a sidecar reaches an endpoint it chose (Envoy's cluster transport per endpoint,
// reference §4 "the four paths" and waypoint-and-sidecar.md §8): the proxy core decides where
// the connection goes (buildOutboundRequest, kind 'sidecar'); this file decides what carries it.
//
//   HBONE endpoint (ambient pod, sidecar with HBONE, waypoint)  -> HBONE to <pod>:15008, authority <pod>:<port>
//   endpoint with a waypoint                                    -> HBONE to <waypoint>:15008, authority <pod>:<port>
//   sidecar peer without HBONE (mtlsOnlyPeers), or any sidecar
//   when this proxy has HBONE off                               -> Istio mTLS to <pod>:<port>
//   mesh-less pod (mode none), or HBONE off and not a sidecar   -> plaintext TCP to <pod>:<port>
//   unknown address                                             -> plaintext TCP to where the app was going (passthrough)
import type { Address } from '../mesh/hbone-server.js';
import type { SpiffeId } from '../mesh/identity.js';
import { workloadIdentity, type Service, type Workload, type WorkloadStore } from '../mesh/workloads.js';
import { buildOutboundRequest, type OutboundProxy, type OutboundRequest } from '../proxy/outbound-request.js';
import type { SidecarConfig } from './config.js';

export type EndpointTransport =
  | { kind: 'hbone'; hboneAddr: Address; authority: string; target: Address; expected: SpiffeId; workload: Workload; service?: Service; waypoint?: Workload }
  | { kind: 'istio-mtls'; target: Address; expected: SpiffeId; workload: Workload; service?: Service }
  | { kind: 'plaintext'; target: Address; workload: Workload; service?: Service }
  | { kind: 'passthrough'; target: Address };

/** A waypoint is a workload some other workload names as its waypoint. */
export function isWaypoint(store: WorkloadStore, w: Workload): boolean {
  return store.state.workloads.some((x) => x.waypointAddresses.includes(w.workloadIp));
}

/** A pod with its own proxy (nativeHbone) that is not a waypoint, or one listed as mTLS-only. */
export function isSidecarPeer(cfg: Pick<SidecarConfig, 'mtlsOnlyPeers'>, store: WorkloadStore, w: Workload): boolean {
  return cfg.mtlsOnlyPeers.includes(w.workloadIp) || (w.nativeHbone && !isWaypoint(store, w));
}

/** The sidecar's adjustment of the core decision: Istio mTLS to sidecars without HBONE, plaintext when HBONE is off. */
export function transportFor(cfg: Pick<SidecarConfig, 'hbone' | 'mtlsOnlyPeers'>, store: WorkloadStore, req: OutboundRequest): EndpointTransport {
  if (req.kind === 'passthrough') return { kind: 'passthrough', target: req.target };
  const svc = req.service ? { service: req.service } : {};
  // With a waypoint, the core's target is already the pod the sidecar chose (kind 'sidecar').
  const target = req.target;
  const { workload } = req;
  if (cfg.mtlsOnlyPeers.includes(workload.workloadIp) || (!cfg.hbone && isSidecarPeer(cfg, store, workload))) {
    return { kind: 'istio-mtls', target, expected: workloadIdentity(workload), workload, ...svc };
  }
  if (req.kind === 'hbone' && cfg.hbone) {
    return {
      kind: 'hbone', hboneAddr: req.hboneAddr, authority: req.authority, target, expected: req.expected, workload,
      ...svc, ...(req.waypoint ? { waypoint: req.waypoint } : {}),
    };
  }
  return { kind: 'plaintext', target, workload, ...svc };
}

/** The transport to `dst` (a Service VIP:port or a pod IP:port) from this sidecar. */
export function decideTransport(cfg: Pick<SidecarConfig, 'hbone' | 'mtlsOnlyPeers' | 'node' | 'instanceIp'>, store: WorkloadStore, dst: Address, random?: () => number): EndpointTransport {
  const proxy: OutboundProxy = { kind: 'sidecar', node: cfg.node, instanceIp: cfg.instanceIp };
  return transportFor(cfg, store, buildOutboundRequest(store, proxy, dst, random));
}
