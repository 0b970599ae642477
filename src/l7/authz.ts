// L7 AuthorizationPolicy, as the RBAC filter of a waypoint or sidecar enforces it
// (waypoint-and-sidecar.md §1): DENY policies first; no ALLOW policy = allow; any ALLOW match
// = allow; otherwise deny. A policy matches when any rule does; a rule when its from, to and
// when all hold; a from/to list when any entry does; an entry when every field does (each
// field: any value matches and no not-value does). Policies with no rules match nothing.
//
// String values follow Istio's AuthorizationPolicy rules: `*` alone = present (non-empty),
// `*x` = suffix, `x*` = prefix, else exact. Hosts compare case-insensitively (Istio's host
// matcher ignores case). ipBlocks take CIDRs or single addresses.
import type { HttpRequestFacts, L7AuthorizationPolicy, L7Condition, L7Operation, L7Rule, L7Source } from './model.js';
import { cidrContains, isIpv4 } from '../util/ip.js';
import { headerValue } from './route-match.js';

export interface L7AuthzDecision {
  allowed: boolean;
  /** Origin of the deciding policy (absent when none decided: no ALLOW policies). */
  policy?: string;
  /** Human-readable why, for logs. */
  reason: string;
}

/** Istio's string value: `*`, `prefix*`, `*suffix` or exact. */
export function istioValueMatch(pattern: string, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (p === '*') return v !== '';
  if (p.startsWith('*')) return v.endsWith(p.slice(1));
  if (p.endsWith('*')) return v.startsWith(p.slice(0, -1));
  return v === p;
}

export function ipBlockMatch(block: string, ip: string): boolean {
  if (!isIpv4(ip)) return false;
  if (block.includes('/')) return cidrContains(block, ip);
  return block === ip;
}

/** A field holds when its positive list is absent/empty or any value matches, and no not-value matches. */
function field(pos: string[] | undefined, neg: string[] | undefined, pred: (v: string) => boolean): boolean {
  const p = !pos || pos.length === 0 || pos.some(pred);
  const n = !!neg && neg.length > 0 && neg.some(pred);
  return p && !n;
}

export function sourceMatch(s: L7Source, f: HttpRequestFacts): boolean {
  return (
    field(s.principals, s.notPrincipals, (v) => istioValueMatch(v, f.srcPrincipal)) &&
    field(s.namespaces, s.notNamespaces, (v) => istioValueMatch(v, f.srcNamespace)) &&
    field(s.ipBlocks, s.notIpBlocks, (v) => ipBlockMatch(v, f.srcIp))
  );
}

export function operationMatch(o: L7Operation, f: HttpRequestFacts): boolean {
  return (
    field(o.hosts, o.notHosts, (v) => istioValueMatch(v, f.host, true)) &&
    field(o.ports, o.notPorts, (v) => v === String(f.dstPort)) &&
    field(o.methods, o.notMethods, (v) => istioValueMatch(v, f.method)) &&
    field(o.paths, o.notPaths, (v) => istioValueMatch(v, f.path))
  );
}

const HEADER_KEY = /^request\.headers\[(.+)\]$/;

/** The value a `when` key stands for; undefined = absent (never matches a positive value). */
export function conditionValue(key: string, f: HttpRequestFacts): { value: string | undefined; kind: 'string' | 'ip' } | undefined {
  const h = HEADER_KEY.exec(key);
  if (h) return { value: headerValue(f.headers, h[1].toLowerCase()), kind: 'string' };
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
      return { value: f.srcIp, kind: 'ip' };
    case 'source.namespace':
      return { value: f.srcNamespace, kind: 'string' };
    case 'source.principal':
      return { value: f.srcPrincipal, kind: 'string' };
    case 'destination.ip':
      return { value: f.dstIp, kind: 'ip' };
    case 'destination.port':
      return { value: String(f.dstPort), kind: 'string' };
    default:
      return undefined;
  }
}

/** Keys the lab understands; the Istio parser rejects others (request.auth.* needs JWT, which the lab has not). */
export const SUPPORTED_CONDITION_KEYS = ['request.headers[<name>]', 'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port'];

export function conditionMatch(c: L7Condition, f: HttpRequestFacts): boolean {
  const v = conditionValue(c.key, f);
  // An unknown key cannot be evaluated: it never matches (so a DENY with it never denies
  // and an ALLOW with it never allows), which is how Envoy treats an unmatchable condition.
  if (!v) return false;
  const pred = (pattern: string): boolean =>
    v.kind === 'ip' ? v.value !== undefined && ipBlockMatch(pattern, v.value) : istioValueMatch(pattern, v.value);
  return field(c.values, c.notValues, pred);
}

export function ruleMatch(r: L7Rule, f: HttpRequestFacts): boolean {
  const from = !r.from || r.from.length === 0 || r.from.some((s) => sourceMatch(s, f));
  const to = !r.to || r.to.length === 0 || r.to.some((o) => operationMatch(o, f));
  const when = !r.when || r.when.every((c) => conditionMatch(c, f));
  return from && to && when;
}

export const policyMatch = (p: L7AuthorizationPolicy, f: HttpRequestFacts): boolean => p.rules.some((r) => ruleMatch(r, f));

/** The policies given are the ones this proxy enforces for this request (the caller selects them by target). */
export function authorizeRequest(policies: L7AuthorizationPolicy[], facts: HttpRequestFacts): L7AuthzDecision {
  const deny = policies.find((p) => p.action === 'DENY' && policyMatch(p, facts));
  if (deny) return { allowed: false, policy: deny.origin, reason: `denied by DENY policy ${deny.origin}` };
  const allows = policies.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return { allowed: true, reason: 'no ALLOW policies' };
  const allow = allows.find((p) => policyMatch(p, facts));
  if (allow) return { allowed: true, policy: allow.origin, reason: `allowed by ${allow.origin}` };
  return { allowed: false, reason: `no ALLOW policy matched (${allows.map((p) => p.origin).join(', ')})` };
}
