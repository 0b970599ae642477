// ztunnel's L4 authorization (rbac.rs, 1.18), reference §3.5. Policies arrive already
// converted by istiod (authz-convert.ts); this file only decides.
import type { SpiffeId } from './identity.js';
import { principalOf } from './identity.js';
import { cidrContains, isIpv4 } from '../util/ip.js';

export type StringMatch = { Exact: string } | { Prefix: string } | { Suffix: string } | 'Presence';

/** One entry of a group. Field names are ztunnel's (snake_case); absent = empty. */
export interface RbacMatch {
  namespaces?: StringMatch[];
  not_namespaces?: StringMatch[];
  principals?: StringMatch[];
  not_principals?: StringMatch[];
  /** CIDRs */
  source_ips?: string[];
  not_source_ips?: string[];
  destination_ips?: string[];
  not_destination_ips?: string[];
  destination_ports?: number[];
  not_destination_ports?: number[];
}

export type RbacScope = 'Global' | 'Namespace' | 'WorkloadSelector';
export type RbacAction = 'Allow' | 'Deny';

export interface Authorization {
  name: string;
  namespace: string;
  scope: RbacScope;
  action: RbacAction;
  /** rules (any) -> groups (all) -> matches (all, per 1.18). */
  groups: RbacMatch[][][];
}

/** What RBAC sees of a connection. No identity for plaintext (15006). */
export interface RbacConnection {
  srcIdentity?: SpiffeId;
  srcIp: string;
  dstIp: string;
  dstPort: number;
}

export interface AuthzDecision {
  allowed: boolean;
  /** Human-readable why, for logs. */
  reason: string;
  /** "ns/name" of the deciding policy, when one decided. */
  policy?: string;
}

export function stringMatches(m: StringMatch, s: string): boolean {
  if (m === 'Presence' || (typeof m === 'object' && 'Presence' in m)) return s !== '';
  if ('Exact' in m) return s === m.Exact;
  if ('Prefix' in m) return s.startsWith(m.Prefix);
  return s.endsWith(m.Suffix);
}

const ipIn = (cidr: string, ip: string): boolean => (cidr.includes('/') ? cidrContains(cidr, ip) : cidr === ip);

/** A field matches when its positive list is empty or any value matches, and no negative value does. */
function field<T>(pos: T[] | undefined, neg: T[] | undefined, pred: (v: T) => boolean): boolean {
  const p = !pos || pos.length === 0 || pos.some(pred);
  const n = !!neg && neg.length > 0 && neg.some(pred);
  return p && !n;
}

const FIELDS: Array<keyof RbacMatch> = [
  'namespaces', 'not_namespaces', 'principals', 'not_principals', 'source_ips', 'not_source_ips',
  'destination_ips', 'not_destination_ips', 'destination_ports', 'not_destination_ports',
];

export const matchIsEmpty = (m: RbacMatch): boolean => FIELDS.every((f) => !m[f] || m[f]!.length === 0);

export function rbacMatch(m: RbacMatch, c: RbacConnection): boolean {
  // An entry with nothing in it matches nothing (ztunnel: "empty match").
  if (matchIsEmpty(m)) return false;
  const id = c.srcIdentity;
  const principal = id ? principalOf(id) : undefined;
  const srcIpOk = isIpv4(c.srcIp);
  return (
    field(m.namespaces, m.not_namespaces, (s) => id !== undefined && stringMatches(s, id.namespace)) &&
    field(m.principals, m.not_principals, (s) => principal !== undefined && stringMatches(s, principal)) &&
    field(m.source_ips, m.not_source_ips, (cidr) => srcIpOk && ipIn(cidr, c.srcIp)) &&
    field(m.destination_ips, m.not_destination_ips, (cidr) => ipIn(cidr, c.dstIp)) &&
    field(m.destination_ports, m.not_destination_ports, (p) => p === c.dstPort)
  );
}

/** A policy matches when any rule matches; a rule when all its groups do; a group when all its entries do. */
export function policyMatches(p: Authorization, c: RbacConnection): boolean {
  return p.groups.some((rule) => rule.every((group) => group.every((m) => rbacMatch(m, c))));
}

const keyOf = (p: Authorization): string => `${p.namespace}/${p.name}`;

/**
 * The decision for a connection to a destination whose applied policy set is `policies`
 * (WorkloadStore.policiesFor); `undefined` = the destination is unknown, which ztunnel denies.
 */
export function authorize(c: RbacConnection, policies: Authorization[] | undefined): AuthzDecision {
  if (!policies) return { allowed: false, reason: 'unknown destination' };
  const deny = policies.find((p) => p.action === 'Deny' && policyMatches(p, c));
  if (deny) return { allowed: false, reason: `denied by DENY policy ${keyOf(deny)}`, policy: keyOf(deny) };
  const allows = policies.filter((p) => p.action === 'Allow');
  if (allows.length === 0) return { allowed: true, reason: 'no ALLOW policies' };
  const allow = allows.find((p) => policyMatches(p, c));
  if (allow) return { allowed: true, reason: `allowed by ${keyOf(allow)}`, policy: keyOf(allow) };
  return { allowed: false, reason: `no ALLOW policy matched (${allows.map(keyOf).join(', ')})` };
}
