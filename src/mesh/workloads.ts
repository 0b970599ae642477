// The workload store: what ztunnel knows about every pod and Service, in the field names of
// ztunnel 1.18's local config / config_dump (camelCase; reference §3.6), plus the 1.19+
// top-level `services` list. Lookups are by IP, as ztunnel's are: the data path only ever
// has addresses in hand.
import type { Authorization } from './authz.js';
import { DEFAULT_TRUST_DOMAIN, type SpiffeId } from './identity.js';

export type WorkloadProtocol = 'HBONE' | 'TCP';
export type WorkloadStatus = 'Healthy' | 'Unhealthy';

export interface Workload {
  workloadIp: string;
  waypointAddresses: string[];
  /** "ip:port" to send this workload's HBONE to instead of <workloadIp>:15008; null = direct. */
  gatewayAddress: string | null;
  protocol: WorkloadProtocol;
  name: string;
  namespace: string;
  trustDomain: string;
  serviceAccount: string;
  workloadName: string;
  workloadType: string;
  canonicalName: string;
  canonicalRevision: string;
  node: string;
  /** The pod terminates HBONE itself (a sidecar): no same-node fast path for it. */
  nativeHbone: boolean;
  /** "ns/name" of the WorkloadSelector-scoped policies selecting this workload. */
  authorizationPolicies: string[];
  status: WorkloadStatus;
  clusterId: string;
}

export interface Service {
  name: string;
  namespace: string;
  /** <name>.<namespace>.svc.cluster.local */
  hostname: string;
  vips: string[];
  /** Service port -> target port (JSON object keys are strings). */
  ports: Record<string, number>;
  /** Workload IPs behind the Service. */
  endpoints: string[];
}

export interface MeshState {
  workloads: Workload[];
  services: Service[];
  policies: Authorization[];
}

/** Istio's root namespace: AuthorizationPolicies there without a selector are Global. */
export const ROOT_NAMESPACE = 'istio-system';

export const workloadIdentity = (w: Workload): SpiffeId => ({
  trustDomain: w.trustDomain || DEFAULT_TRUST_DOMAIN,
  namespace: w.namespace,
  serviceAccount: w.serviceAccount || 'default',
});

export interface Upstream {
  workload: Workload;
  port: number;
  /** Set when the destination was a Service VIP. */
  service?: Service;
}

export class WorkloadStore {
  private readonly byIp = new Map<string, Workload>();
  private readonly byVip = new Map<string, Service>();
  private readonly policiesByKey = new Map<string, Authorization>();

  constructor(readonly state: MeshState) {
    for (const w of state.workloads) this.byIp.set(w.workloadIp, w);
    for (const s of state.services) for (const vip of s.vips) this.byVip.set(vip, s);
    for (const p of state.policies) this.policiesByKey.set(`${p.namespace}/${p.name}`, p);
  }

  workload(ip: string): Workload | undefined {
    return this.byIp.get(ip);
  }

  service(vip: string): Service | undefined {
    return this.byVip.get(vip);
  }

  serviceForWorkload(w: Workload): Service | undefined {
    return this.state.services.find((s) => s.endpoints.includes(w.workloadIp));
  }

  /**
   * VIP:port -> a uniformly random healthy endpoint and the target port (ztunnel's
   * `iter().choose(thread_rng)`). Undefined when the VIP is unknown, the port is not one of
   * the Service's, or no endpoint is healthy: the caller then passes the traffic through.
   */
  resolveVip(ip: string, port: number, random: () => number = Math.random): Upstream | undefined {
    const service = this.byVip.get(ip);
    if (!service) return undefined;
    const targetPort = service.ports[String(port)];
    if (targetPort === undefined) return undefined;
    const healthy = service.endpoints.map((e) => this.byIp.get(e)).filter((w): w is Workload => !!w && w.status === 'Healthy');
    if (healthy.length === 0) return undefined;
    return { workload: healthy[Math.floor(random() * healthy.length)], port: targetPort, service };
  }

  /** Where a connection to ip:port goes: a Service endpoint, the workload itself, or nothing (passthrough). */
  findUpstream(ip: string, port: number, random?: () => number): Upstream | undefined {
    const viaVip = this.resolveVip(ip, port, random);
    if (viaVip) return viaVip;
    const w = this.byIp.get(ip);
    return w ? { workload: w, port } : undefined;
  }

  /**
   * The policies ztunnel applies to a destination: Global ones, its namespace's
   * Namespace-scoped ones and those named in its authorizationPolicies.
   */
  policiesFor(w: Workload): Authorization[] {
    const out: Authorization[] = [];
    for (const p of this.state.policies) {
      if (p.scope === 'Global' || (p.scope === 'Namespace' && p.namespace === w.namespace)) out.push(p);
    }
    for (const key of w.authorizationPolicies) {
      const p = this.policiesByKey.get(key);
      if (p && p.scope === 'WorkloadSelector') out.push(p);
    }
    return out;
  }
}
