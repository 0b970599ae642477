// From a matched rule to one endpoint: the weighted backend choice (Envoy weighted_clusters),
// the DestinationRule subset that narrows the Service's endpoints by labels, and the load
// balancer that picks one of them. Randomness is injected so tests can pin the split.
import type { Backend, DestinationPolicy, LoadBalancer } from './model.js';

/** A value in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** One endpoint of a Service port, as the proxy's view of the mesh gives it. */
export interface L7Endpoint {
  /** Pod IP. */
  address: string;
  /** Target port on the pod. */
  port: number;
  labels: Record<string, string>;
  /** Absent = healthy. */
  healthy?: boolean;
  /** Whatever the caller's connect() needs (workload, HBONE capability...); the engine never reads it. */
  meta?: unknown;
}

export interface WeightedChoice {
  backend: Backend;
  index: number;
  /** The backend's share in percent of the total weight (90 for 90/10). */
  weightPercent: number;
}

/**
 * Envoy's weighted_clusters: a number in [0, total) falls into one backend's range, in order.
 * Weight-0 backends never get traffic, unless every weight is 0: then they share equally
 * (the single weight-0 destination of a VirtualService gets 100).
 */
export function chooseBackend(backends: Backend[], random: RandomSource): WeightedChoice | undefined {
  if (backends.length === 0) return undefined;
  const allZero = backends.every((b) => b.weight <= 0);
  const weights = backends.map((b) => (allZero ? 1 : Math.max(0, b.weight)));
  const total = weights.reduce((a, b) => a + b, 0);
  let x = Math.floor(random() * total);
  for (let index = 0; index < backends.length; index++) {
    if (x < weights[index]) return { backend: backends[index], index, weightPercent: (weights[index] * 100) / total };
    x -= weights[index];
  }
  const last = backends.length - 1;
  return { backend: backends[last], index: last, weightPercent: (weights[last] * 100) / total };
}

export type SubsetResult =
  | { ok: true; endpoints: L7Endpoint[]; loadBalancer?: LoadBalancer }
  /** The backend names a subset no DestinationRule defines: Envoy has no such cluster (503, flag NC). */
  | { ok: false; reason: string };

export const labelsMatch = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The endpoints of a backend: all of the Service's, or the subset's by its labels. */
export function subsetEndpoints(backend: Backend, all: L7Endpoint[], policies: DestinationPolicy[]): SubsetResult {
  const policy = policies.find((p) => p.host === backend.host);
  if (!backend.subset) return { ok: true, endpoints: all, loadBalancer: policy?.loadBalancer };
  const subset = policy?.subsets.find((s) => s.name === backend.subset);
  if (!policy || !subset) return { ok: false, reason: `no subset ${backend.subset} for ${backend.host} in any DestinationRule` };
  return {
    ok: true,
    endpoints: all.filter((e) => labelsMatch(subset.labels, e.labels)),
    loadBalancer: subset.loadBalancer ?? policy.loadBalancer,
  };
}

/** Istio's default simple load balancer since 1.14. */
export const DEFAULT_LOAD_BALANCER: LoadBalancer = 'LEAST_REQUEST';

export const endpointKey = (e: Pick<L7Endpoint, 'address' | 'port'>): string => `${e.address}:${e.port}`;

/**
 * Per-cluster load-balancer state: the round-robin cursor and, for LEAST_REQUEST, the requests
 * in flight per endpoint (the engine reports start and end of each upstream attempt).
 */
export class LoadBalancerState {
  private readonly cursors = new Map<string, number>();
  private readonly active = new Map<string, number>();

  constructor(private readonly random: RandomSource) {}

  /**
   * Pick one healthy endpoint; `exclude` holds endpoints already tried by this request (Istio's
   * retry_host_predicate previous_hosts), which are avoided while others remain.
   */
  pick(cluster: string, lb: LoadBalancer | undefined, endpoints: L7Endpoint[], exclude: ReadonlySet<string> = new Set()): L7Endpoint | undefined {
    const healthy = endpoints.filter((e) => e.healthy !== false);
    if (healthy.length === 0) return undefined;
    const fresh = healthy.filter((e) => !exclude.has(endpointKey(e)));
    const candidates = fresh.length > 0 ? fresh : healthy;
    switch (lb ?? DEFAULT_LOAD_BALANCER) {
      case 'ROUND_ROBIN': {
        const n = this.cursors.get(cluster) ?? 0;
        this.cursors.set(cluster, n + 1);
        return candidates[n % candidates.length];
      }
      case 'LEAST_REQUEST': {
        // Envoy's power of two choices (choice_count 2) when all weights are equal.
        if (candidates.length === 1) return candidates[0];
        const a = candidates[Math.floor(this.random() * candidates.length)];
        const b = candidates[Math.floor(this.random() * candidates.length)];
        return this.inFlight(b) < this.inFlight(a) ? b : a;
      }
      case 'RANDOM':
      case 'PASSTHROUGH':
      default:
        return candidates[Math.floor(this.random() * candidates.length)];
    }
  }

  inFlight(e: L7Endpoint): number {
    return this.active.get(endpointKey(e)) ?? 0;
  }

  started(e: L7Endpoint): void {
    const k = endpointKey(e);
    this.active.set(k, (this.active.get(k) ?? 0) + 1);
  }

  finished(e: L7Endpoint): void {
    const k = endpointKey(e);
    const n = (this.active.get(k) ?? 1) - 1;
    if (n <= 0) this.active.delete(k);
    else this.active.set(k, n);
  }
}

/** A deterministic RandomSource (mulberry32) for tests and reproducible runs. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
