// PeerAuthentication for ztunnel, the way istiod 1.19+ hands it over: a STRICT mode becomes a
// DENY authorization (`istio_converted_static_strict`) that matches connections without a peer
// principal, i.e. plaintext arriving on 15006. The mode that applies to a workload is the most
// specific one (workload selector > namespace > mesh-wide in istio-system); UNSET inherits;
// the default is PERMISSIVE. portLevelMtls overrides the workload's mode per target port.
import type { PeerAuthMode, PeerAuthenticationSpec } from '../l7/model.js';
import type { Authorization, RbacMatch } from './authz.js';
import { ROOT_NAMESPACE } from './workloads.js';

export const STRICT_POLICY_NAME = 'istio_converted_static_strict';

const labelsMatch = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);

export interface EffectiveMtls {
  mode: Exclude<PeerAuthMode, 'UNSET'>;
  ports: Record<number, Exclude<PeerAuthMode, 'UNSET'>>;
}

/** The PeerAuthentication mode for a pod (namespace, labels), most specific first. */
export function effectiveMtls(pas: PeerAuthenticationSpec[], namespace: string, labels: Record<string, string>): EffectiveMtls {
  const workload = pas.find((p) => p.namespace === namespace && p.selector && labelsMatch(p.selector, labels));
  const ns = pas.find((p) => p.namespace === namespace && !p.selector);
  const mesh = pas.find((p) => p.namespace === ROOT_NAMESPACE && !p.selector);
  const chain = [workload, ns, mesh].filter((p): p is PeerAuthenticationSpec => !!p);
  const mode = chain.map((p) => p.mode).find((m) => m !== 'UNSET') ?? 'PERMISSIVE';
  const ports: EffectiveMtls['ports'] = {};
  for (const [port, m] of Object.entries(workload?.ports ?? {})) {
    if (m !== 'UNSET') ports[Number(port)] = m;
  }
  return { mode: mode as EffectiveMtls['mode'], ports };
}

/**
 * The DENY policy for a workload whose effective mode is STRICT on some ports, or undefined.
 * Its groups list the ports it covers (all ports when strict, minus port-level exceptions).
 */
export function strictPolicy(namespace: string, m: EffectiveMtls, workload: string): Authorization | undefined {
  const strictPorts = Object.entries(m.ports).filter(([, v]) => v === 'STRICT').map(([p]) => Number(p));
  const relaxedPorts = Object.entries(m.ports).filter(([, v]) => v !== 'STRICT').map(([p]) => Number(p));
  const noPeer: RbacMatch = { not_principals: ['Presence'] };
  // Port-level settings make the policy the workload's own; otherwise one per namespace does.
  const name = Object.keys(m.ports).length ? `${STRICT_POLICY_NAME}_${workload}` : STRICT_POLICY_NAME;
  if (m.mode === 'STRICT') {
    return {
      name, namespace, scope: 'WorkloadSelector', action: 'Deny',
      groups: [[[noPeer], ...(relaxedPorts.length ? [[{ not_destination_ports: relaxedPorts }]] : [])]],
    };
  }
  if (strictPorts.length) {
    return { name, namespace, scope: 'WorkloadSelector', action: 'Deny', groups: [[[noPeer], [{ destination_ports: strictPorts }]]] };
  }
  return undefined;
}
