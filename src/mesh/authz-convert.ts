// istiod's side of ambient L4 authorization (ambientindex.go, 1.18): an Istio
// AuthorizationPolicy becomes ztunnel's Authorization. Per Istio rule: one group of `to`
// entries, one of `from` entries (the only L4 parts the lab's topology can express).
import type { PolicySpec, PolicySource, PolicyOperation } from '../topology/types.js';
import type { Authorization, RbacMatch, StringMatch } from './authz.js';
import { ROOT_NAMESPACE } from './workloads.js';

/** Istio's string forms: "*" = presence, "x*" = prefix, "*x" = suffix, else exact. */
export function istioStringMatch(s: string): StringMatch {
  if (s === '*') return 'Presence';
  if (s.endsWith('*')) return { Prefix: s.slice(0, -1) };
  if (s.startsWith('*')) return { Suffix: s.slice(1) };
  return { Exact: s };
}

const cidr = (s: string): string => (s.includes('/') ? s : `${s}/32`);
const ports = (ps: string[] | undefined): number[] => (ps ?? []).map(Number).filter((n) => Number.isInteger(n) && n > 0);
const strs = (xs: string[] | undefined): StringMatch[] => (xs ?? []).map(istioStringMatch);

function fromMatch(s: PolicySource): RbacMatch {
  return {
    namespaces: strs(s.namespaces),
    not_namespaces: strs(s.notNamespaces),
    principals: strs(s.principals),
    not_principals: strs(s.notPrincipals),
    source_ips: (s.ipBlocks ?? []).map(cidr),
    not_source_ips: (s.notIpBlocks ?? []).map(cidr),
    destination_ips: [],
    not_destination_ips: [],
    destination_ports: [],
    not_destination_ports: [],
  };
}

function toMatch(o: PolicyOperation): RbacMatch {
  return {
    namespaces: [], not_namespaces: [], principals: [], not_principals: [], source_ips: [], not_source_ips: [],
    destination_ips: [],
    not_destination_ips: [],
    destination_ports: ports(o.ports),
    not_destination_ports: ports(o.notPorts),
  };
}

export function policyScope(p: PolicySpec, rootNamespace = ROOT_NAMESPACE): Authorization['scope'] {
  if (p.selector && Object.keys(p.selector).length > 0) return 'WorkloadSelector';
  return p.namespace === rootNamespace ? 'Global' : 'Namespace';
}

export function convertPolicy(p: PolicySpec, rootNamespace = ROOT_NAMESPACE): Authorization {
  const groups: RbacMatch[][][] = p.rules.map((rule) => {
    const rg: RbacMatch[][] = [];
    const to = (rule.to ?? []).map((t) => toMatch(t.operation));
    const from = (rule.from ?? []).map((f) => fromMatch(f.source));
    if (to.length) rg.push(to);
    if (from.length) rg.push(from);
    return rg;
  });
  return {
    name: p.name,
    namespace: p.namespace,
    scope: policyScope(p, rootNamespace),
    action: p.action === 'DENY' ? 'Deny' : 'Allow',
    groups,
  };
}
