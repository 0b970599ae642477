// The outbound decision (ztunnel's build_request, reference §3.3): where a connection to
// origDst goes and how it is carried, decided from the control plane's view alone, before
// any socket is opened. The proxy kind changes one thing: a shared node proxy (ztunnel)
// takes the same-node fast path to pods it captures itself and refuses calls to its own
// address; a sidecar proxies for one pod only, so every HBONE destination, even one on the
// same node, gets HBONE.
import type { Address } from '../mesh/hbone-server.js';
import { formatAuthority } from '../mesh/hbone-client.js';
import type { SpiffeId } from '../mesh/identity.js';
import { HBONE_PORT } from '../mesh/ports.js';
import { workloadIdentity, type Service, type Workload, type WorkloadStore } from '../mesh/workloads.js';

export type ProxyKind = 'ztunnel' | 'sidecar' | 'waypoint';

/** What the decision needs to know about the proxy making it. */
export interface OutboundProxy {
  kind: ProxyKind;
  /** The node the proxy runs on (NODE_NAME). */
  node: string;
  /** The proxy's own address (INSTANCE_IP); a ztunnel refuses calls to it (SelfCall). */
  instanceIp: string;
}

/** How one outbound connection is carried. */
export type OutboundRequest =
  /** Unknown destination: plain TCP to where the client was going. */
  | { kind: 'passthrough'; target: Address }
  /** A known workload without HBONE: plain TCP to the pod (target port resolved). */
  | { kind: 'tcp'; target: Address; workload: Workload; service?: Service }
  /** ztunnel only: same node, destination without its own HBONE: RBAC here, then straight to the pod. */
  | { kind: 'direct-local'; target: Address; workload: Workload; service?: Service }
  | {
    kind: 'hbone';
    /** Where the TCP+TLS goes (pod or waypoint :15008, or the gateway address). */
    hboneAddr: Address;
    authority: string;
    /** The final destination (pod:targetPort, or the original VIP:port via a waypoint). */
    target: Address;
    /** The identity the HBONE server must present. */
    expected: SpiffeId;
    workload: Workload;
    service?: Service;
    waypoint?: Workload;
  };

export class OutboundError extends Error {
  override name = 'OutboundError';
}

function parseHostPort(s: string): Address | undefined {
  const i = s.lastIndexOf(':');
  if (i < 0) return undefined;
  const port = Number(s.slice(i + 1));
  return Number.isInteger(port) ? { ip: s.slice(0, i).replace(/^\[|\]$/g, ''), port } : undefined;
}

export function buildOutboundRequest(store: WorkloadStore, proxy: OutboundProxy, origDst: Address, random: () => number = Math.random): OutboundRequest {
  if (proxy.kind === 'ztunnel' && origDst.ip === proxy.instanceIp) {
    throw new OutboundError(`call to ztunnel's own address ${origDst.ip} refused (SelfCall)`);
  }
  const up = store.findUpstream(origDst.ip, origDst.port, random);
  if (!up) return { kind: 'passthrough', target: origDst };
  const { workload, service } = up;
  const target = { ip: workload.workloadIp, port: up.port };
  const svc = service ? { service } : {};

  if (workload.waypointAddresses.length > 0) {
    const wpIp = workload.waypointAddresses[Math.floor(random() * workload.waypointAddresses.length)];
    const waypoint = store.workload(wpIp);
    if (!waypoint) throw new OutboundError(`waypoint ${wpIp} of ${workload.namespace}/${workload.name} is not a known workload`);
    // A ztunnel keeps the original VIP:port and lets the waypoint choose; a sidecar has
    // already chosen the pod and names it (reference §4, "Sidecar -> Ambient, with waypoint").
    const via = proxy.kind === 'sidecar' ? target : origDst;
    return {
      kind: 'hbone', hboneAddr: { ip: wpIp, port: HBONE_PORT }, authority: formatAuthority(via), target: via,
      expected: workloadIdentity(waypoint), workload, waypoint, ...svc,
    };
  }
  if (workload.protocol === 'HBONE') {
    // The fast path exists because this ztunnel also terminates the destination's HBONE; a
    // sidecar does not, and a pod with its own HBONE (nativeHbone) terminates it itself.
    if (proxy.kind === 'ztunnel' && workload.node === proxy.node && !workload.nativeHbone) {
      return { kind: 'direct-local', target, workload, ...svc };
    }
    const hboneAddr = (workload.gatewayAddress && parseHostPort(workload.gatewayAddress)) || { ip: workload.workloadIp, port: HBONE_PORT };
    return { kind: 'hbone', hboneAddr, authority: formatAuthority(target), target, expected: workloadIdentity(workload), workload, ...svc };
  }
  return { kind: 'tcp', target, workload, ...svc };
}

/** `baggage` as ztunnel sends it for the source workload. */
export function baggageOf(w: Workload, clusterId: string): string {
  return [
    `k8s.cluster.name=${w.clusterId || clusterId}`,
    `k8s.namespace.name=${w.namespace}`,
    `k8s.${w.workloadType || 'pod'}.name=${w.workloadName || w.name}`,
    `service.name=${w.canonicalName}`,
    `service.version=${w.canonicalRevision}`,
  ].join(',');
}
