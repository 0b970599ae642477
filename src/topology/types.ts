// The normalized topology: what a topology file means once defaults are applied.
// Every other layer (plan, ambient, proxies, trace) reads only this shape, never raw YAML.
import type { MeshResources } from '../l7/model.js';

export type PodMode = 'ambient' | 'sidecar' | 'none';
export type BuiltinApp = 'sleep' | 'httpbin' | 'echo' | 'productpage' | 'details' | 'reviews-v1' | 'reviews-v2' | 'reviews-v3' | 'ratings';
export type TunnelMode = 'auto' | 'kernel' | 'userspace';

export interface NetworkPlan {
  /** Underlay CIDR the nodes' eth0 addresses come from (kind: 172.18.0.0/16). */
  nodeCidr: string;
  /** Pod CIDRs are carved per node out of this /16 as <a>.<b>.<nodeIndex>.0/24. */
  podCidr: string;
  serviceCidr: string;
  dnsIp: string;
}

export interface NodeSpec {
  name: string;
  index: number;
}

export interface PodSpec {
  name: string;
  namespace: string;
  node: string;
  serviceAccount: string;
  labels: Record<string, string>;
  app?: BuiltinApp;
  command?: string[];
  mode: PodMode;
  /** Sidecar pods: the proxy speaks HBONE (Istio's ambient profile; default true); false = classic Istio mTLS. */
  hbone?: boolean;
  /** Stable UID (the ipset comment carries it, as istio-cni does). */
  uid: string;
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort: number;
  protocol: 'TCP' | 'UDP';
  appProtocol?: string;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  selector: Record<string, string>;
  ports: ServicePort[];
}

/** L4 AuthorizationPolicy in Istio's shape (ztunnel enforces the L4 part). */
export interface PolicySpec {
  name: string;
  namespace: string;
  action: 'ALLOW' | 'DENY';
  selector?: Record<string, string>;
  rules: PolicyRule[];
}

export interface PolicyRule {
  from?: Array<{ source: PolicySource }>;
  to?: Array<{ operation: PolicyOperation }>;
}

export interface PolicySource {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
}

export interface PolicyOperation {
  ports?: string[];
  notPorts?: string[];
}

export interface Topology {
  name: string;
  /** Absolute path of the file it came from (errors and state name it). */
  file: string;
  network: NetworkPlan;
  tunnel: TunnelMode;
  /**
   * Istio's ISTIO_META_DNS_CAPTURE on the ztunnels (ztunnel 1.19+): istio-cni DNATs ambient pods'
   * UDP DNS to their ztunnel's :15053, which answers for Services and forwards the rest.
   */
  dnsCapture?: boolean;
  nodes: NodeSpec[];
  pods: PodSpec[];
  services: ServiceSpec[];
  policies: PolicySpec[];
  /** Waypoints, routes, L7 policies...: the Istio/Gateway API objects of `resources:`/`manifests:`, converted. */
  resources?: MeshResources;
  /** The objects of `resources:` and `manifests:` by identity and place (`lab get` lists them). */
  objects?: Array<{ kind: string; namespace: string; name: string; where: string }>;
  /** Things in `resources:` that parse but may not do what the user expects (printed by `lab up`). */
  warnings?: string[];
}

export const podKey = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`;
