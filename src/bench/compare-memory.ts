// Which proxy memory a pod is charged with in each data-path mode: a sidecar pod pays for its
// own proxy; an ambient pod pays its share of its node's ztunnel (one per node, shared by every
// ambient pod there); a pod behind a waypoint also pays its share of the waypoint (shared by the
// pods of its service account). Pure, so the attribution the table prints is unit-tested.
import { COMPARE_MODES, type CompareModeSpec } from './compare-topology.js';

export interface LabPod {
  /** namespace/name, as `lab up --json` lists it. */
  name: string;
  node: string;
  mode: string;
  role: string;
}

export interface ProxyRss {
  id: string;
  role: string;
  pod?: string;
  node?: string;
  kb?: number;
}

export interface MemoryShare {
  /** Proxy memory charged to one pod of the pair: the mean of the client's and the server's. */
  perPodKb: number;
  /** Every proxy a request passes through, each counted once and whole. */
  pathKb: number;
  /** The proxies on the path and how many pods share each. */
  parts: Array<{ id: string; kb: number; sharedBy: number }>;
}

const WAYPOINT_PODS = COMPARE_MODES.filter((m) => m.mode === 'waypoint').length;

export function attributeMemory(spec: CompareModeSpec, client: string, server: string, pods: readonly LabPod[], proxies: readonly ProxyRss[]): MemoryShare {
  const pod = (key: string): LabPod => {
    const p = pods.find((x) => x.name === key);
    if (!p) throw new Error(`no pod ${key} in the lab`);
    return p;
  };
  const ambientOn = (node: string) => pods.filter((p) => p.role === 'workload' && p.mode === 'ambient' && p.node === node).length;
  const find = (pred: (p: ProxyRss) => boolean, what: string): ProxyRss => {
    const p = proxies.find(pred);
    if (!p || p.kb === undefined) throw new Error(`no memory figure for ${what}`);
    return p;
  };
  const parts = new Map<string, { id: string; kb: number; sharedBy: number }>();
  /** What one pod pays for a proxy shared by `sharedBy` pods (the proxy is recorded once). */
  const charge = (p: ProxyRss, sharedBy: number): number => {
    parts.set(p.id, { id: p.id, kb: p.kb!, sharedBy });
    return p.kb! / sharedBy;
  };
  let c = 0;
  let s = 0;
  if (spec.podMode === 'ambient') {
    const cn = pod(client).node;
    const sn = pod(server).node;
    c = charge(find((p) => p.role === 'ztunnel' && p.node === cn, `ztunnel/${cn}`), ambientOn(cn));
    s = charge(find((p) => p.role === 'ztunnel' && p.node === sn, `ztunnel/${sn}`), ambientOn(sn));
    if (spec.mode === 'waypoint') s += charge(find((p) => p.role === 'waypoint', 'the waypoint'), WAYPOINT_PODS);
  } else if (spec.podMode === 'sidecar') {
    c = charge(find((p) => p.role === 'sidecar' && p.pod === client, `sidecar/${client}`), 1);
    s = charge(find((p) => p.role === 'sidecar' && p.pod === server, `sidecar/${server}`), 1);
  }
  const list = [...parts.values()];
  return { perPodKb: (c + s) / 2, pathKb: list.reduce((a, p) => a + p.kb, 0), parts: list };
}
