// Topology -> addresses and names of everything the lab builds. Pure: the same
// topology always yields the same plan, so `lab down` and golden tests can rely on it.
//
// Layout (like kind + kindnet): node i has eth0 = <nodeCidr>+i+2 on the underlay
// bridge and pod CIDR <podCidr a.b>.i.0/24; the first host address of that CIDR is
// the node's "HostIP" (istio-cni GetHostIP), set on every pod's host-side veth as the
// pods' gateway. Each node runs a ztunnel pod (istio-system) first, so it gets .2;
// the cluster DNS pod (kube-system) lives on the first node.
import type { PodSpec, ServiceSpec, Topology } from './types.js';
import { podKey } from './types.js';
import { nthAddress, parseCidr, intToIp } from '../util/ip.js';
import { nodeNetns, nodeUnderlayVeth, podHostVeth, podNetns, underlayNetns } from './naming.js';
import { createHash } from 'node:crypto';

export type PodRole = 'workload' | 'ztunnel' | 'dns' | 'waypoint';

export interface PlannedNode {
  name: string;
  index: number;
  netns: string;
  /** eth0 address on the underlay. */
  ip: string;
  podCidr: string;
  /** First address of the pod CIDR: the pods' gateway and istio-cni's HostIP. */
  hostIp: string;
  underlayVeth: string;
  /** The ztunnel pod of this node. */
  ztunnel: string;
}

export interface PlannedPod extends PodSpec {
  key: string;
  role: PodRole;
  netns: string;
  ip: string;
  hostVeth: string;
  nodeIndex: number;
}

export interface PlannedEndpoint {
  pod: string;
  ip: string;
}

export interface PlannedService extends ServiceSpec {
  key: string;
  vip: string;
  endpoints: PlannedEndpoint[];
}

export interface LabPlan {
  lab: string;
  topology: Topology;
  underlay: { netns: string; bridge: string; cidr: string };
  nodes: PlannedNode[];
  pods: PlannedPod[];
  services: PlannedService[];
  dns: { vip: string; pod: string };
}

export const ZTUNNEL_NAMESPACE = 'istio-system';
export const DNS_NAMESPACE = 'kube-system';
export const DNS_POD = 'coredns';
export const ztunnelPodName = (node: string): string => `ztunnel-${node}`;
/** Istio names a waypoint's Deployment and ServiceAccount `<gateway>-istio-waypoint`. */
export const waypointPodName = (gateway: string): string => `${gateway}-istio-waypoint`;
export const WAYPOINT_GATEWAY_LABEL = 'istio.io/gateway-name';

export function podUid(lab: string, ns: string, name: string): string {
  const h = createHash('sha256').update(`${lab}/${ns}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

function systemPods(t: Topology): Array<PodSpec & { role: PodRole }> {
  const sys: Array<PodSpec & { role: PodRole }> = [];
  for (const n of t.nodes) {
    const name = ztunnelPodName(n.name);
    sys.push({
      name, namespace: ZTUNNEL_NAMESPACE, node: n.name, serviceAccount: 'ztunnel',
      labels: { app: 'ztunnel' }, mode: 'none', uid: podUid(t.name, ZTUNNEL_NAMESPACE, name), role: 'ztunnel',
    });
  }
  sys.push({
    name: DNS_POD, namespace: DNS_NAMESPACE, node: t.nodes[0].name, serviceAccount: 'coredns',
    labels: { 'k8s-app': 'kube-dns' }, mode: 'none', uid: podUid(t.name, DNS_NAMESPACE, DNS_POD), role: 'dns',
  });
  return sys;
}

/**
 * One pod per waypoint Gateway, named and labelled as Istio's deployment controller does. Its
 * node: the lab's `ambient-lab.io/node` annotation, else the first node (documented default).
 * Redirection is disabled for it (mode none): a waypoint is never in ztunnel-pods-ips.
 */
function waypointPods(t: Topology): Array<PodSpec & { role: PodRole }> {
  return (t.resources?.waypoints ?? []).map((w) => {
    const name = waypointPodName(w.gateway);
    return {
      name, namespace: w.namespace, node: w.node ?? t.nodes[0].name, serviceAccount: name,
      labels: { [WAYPOINT_GATEWAY_LABEL]: w.gateway, 'gateway.istio.io/managed': 'istio.io-mesh-controller' },
      mode: 'none', uid: podUid(t.name, w.namespace, name), role: 'waypoint',
    };
  });
}

export function planAddresses(t: Topology): LabPlan {
  const lab = t.name;
  const pod16 = parseCidr(t.network.podCidr).base;
  const nodes: PlannedNode[] = t.nodes.map((n) => {
    const podCidr = `${intToIp((pod16 + (n.index << 8)) >>> 0)}/24`;
    return {
      name: n.name,
      index: n.index,
      netns: nodeNetns(lab, n.name),
      ip: nthAddress(t.network.nodeCidr, n.index + 2),
      podCidr,
      hostIp: nthAddress(podCidr, 1),
      underlayVeth: nodeUnderlayVeth(lab, n.name),
      ztunnel: `${ZTUNNEL_NAMESPACE}/${ztunnelPodName(n.name)}`,
    };
  });
  const byNode = new Map(nodes.map((n) => [n.name, n]));
  const nextHost = new Map(nodes.map((n) => [n.name, 2]));
  // Waypoints come last, so adding one never renumbers the pods before it.
  const all = [...systemPods(t), ...t.pods.map((p) => ({ ...p, role: 'workload' as PodRole })), ...waypointPods(t)];
  const pods: PlannedPod[] = all.map((p) => {
    const node = byNode.get(p.node)!;
    const host = nextHost.get(p.node)!;
    nextHost.set(p.node, host + 1);
    return {
      ...p,
      key: podKey(p),
      netns: podNetns(lab, p.namespace, p.name),
      ip: nthAddress(node.podCidr, host),
      hostVeth: podHostVeth(lab, p.namespace, p.name),
      nodeIndex: node.index,
    };
  });
  const dnsPod = pods.find((p) => p.role === 'dns')!;
  const services: PlannedService[] = [
    {
      name: 'kube-dns', namespace: DNS_NAMESPACE, selector: { 'k8s-app': 'kube-dns' }, key: `${DNS_NAMESPACE}/kube-dns`,
      vip: t.network.dnsIp,
      ports: [
        { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, targetPort: 53, protocol: 'TCP' },
      ],
      endpoints: [{ pod: dnsPod.key, ip: dnsPod.ip }],
    },
  ];
  // .1 is the `kubernetes` Service in a real cluster and .10 is DNS; user Services follow from .11.
  let next = 11;
  for (const s of t.services) {
    let vip = nthAddress(t.network.serviceCidr, next++);
    if (vip === t.network.dnsIp) vip = nthAddress(t.network.serviceCidr, next++);
    const endpoints = pods
      .filter((p) => p.role === 'workload' && p.namespace === s.namespace && labelsMatch(s.selector, p.labels))
      .map((p) => ({ pod: p.key, ip: p.ip }));
    services.push({ ...s, key: `${s.namespace}/${s.name}`, vip, endpoints });
  }
  return {
    lab,
    topology: t,
    underlay: { netns: underlayNetns(lab), bridge: 'br-underlay', cidr: t.network.nodeCidr },
    nodes,
    pods,
    services,
    dns: { vip: t.network.dnsIp, pod: dnsPod.key },
  };
}
