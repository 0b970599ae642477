// AuthorizationPolicy (security.istio.io v1beta1/v1). Where it goes depends on who can enforce it:
//   - bound to a waypoint (targetRef(s) kind Gateway, or selector matchLabels istio.io/gateway-name)
//     -> an L7AuthorizationPolicy for that waypoint;
//   - any L7 field (hosts, methods, paths, request.headers) and no waypoint -> an L7AuthorizationPolicy
//     for sidecars (by selector or namespace) AND, for ztunnel, what istiod's conversion leaves of it
//     (authz-ztunnel.ts), with a warning, because that is what a user of Istio gets;
//   - only L4 fields -> the topology's PolicySpec for ztunnel (the existing path).
import type { L7AuthorizationPolicy, L7Condition, L7Operation, L7Rule, L7Source } from '../l7/model.js';
import { isCidr, isIpv4 } from '../util/ip.js';
import { matchLabels } from './common.js';
import { byKey, childPath } from './reader.js';
import type { Field, ObjectReader } from './reader.js';
import type { KindContext, KindReader } from './types.js';
import { toZtunnelPolicy } from './authz-ztunnel.js';

export const GATEWAY_NAME_LABEL = 'istio.io/gateway-name';

const SOURCE_KEYS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks'] as const;
const OPERATION_KEYS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const L7_OPERATION_KEYS: ReadonlyArray<keyof L7Operation> = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];
const NO_JWT = 'the lab has no RequestAuthentication (JWT)';
const SOURCE_NOT_SUPPORTED = {
  requestPrincipals: NO_JWT,
  notRequestPrincipals: NO_JWT,
  remoteIpBlocks: 'the lab does not trust X-Forwarded-For; use ipBlocks',
  notRemoteIpBlocks: 'the lab does not trust X-Forwarded-For; use notIpBlocks',
};
export const L4_WHEN_KEYS = ['source.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port'] as const;
const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;
const WHEN_KEYS_TEXT = `request.headers[<name>], ${L4_WHEN_KEYS.join(', ')}`;

/** A rule as read, with the paths of its L7 fields (for the ztunnel conversion and its warning). */
export interface ReadRule {
  rule: L7Rule;
  path: string;
  at: number;
  /** Where its hosts/methods/paths/request.headers fields are, in file order. */
  l7Paths: Array<{ path: string; at: number }>;
  /** Per `when` entry: its path and offset, for errors from the conversion. */
  whenAt: Array<{ path: string; at: number }>;
}

function ipList(r: ObjectReader, f: Field): string[] {
  return r.list(f, 'a list of IPs or CIDRs', { nonEmpty: true }).map((item) => {
    const s = r.string(item, 'an IP or CIDR');
    if (!isIpv4(s) && !isCidr(s)) r.fail(item.at, item.path, `invalid IP block "${s}": expected an IPv4 address or CIDR like 10.244.0.0/16`);
    return s;
  });
}

function portList(r: ObjectReader, f: Field): string[] {
  return r.list(f, 'a list of ports as strings', { nonEmpty: true }).map((item) => {
    const s = r.string(item, 'a port number as a string, e.g. "9080"');
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > 65535) r.fail(item.at, item.path, `invalid port "${s}": expected a port number 1-65535 as a string, e.g. "9080"`);
    return s;
  });
}

function nonEmptyStrings(r: ObjectReader, f: Field): string[] {
  return r.list(f, 'a list of strings', { nonEmpty: true }).map((item) => r.nonEmptyString(item, 'a non-empty string'));
}

function readSource(r: ObjectReader, f: Field): L7Source {
  const entries = r.map(f, SOURCE_KEYS, SOURCE_NOT_SUPPORTED);
  if (entries.length === 0) r.fail(f.at, f.path, `must not be empty; expected at least one of ${SOURCE_KEYS.join(', ')}`);
  const s: L7Source = {};
  for (const { key, value } of entries) {
    const k = key as keyof L7Source;
    s[k] = k === 'ipBlocks' || k === 'notIpBlocks' ? ipList(r, value) : nonEmptyStrings(r, value);
  }
  return s;
}

function readOperation(r: ObjectReader, f: Field, l7Paths: ReadRule['l7Paths']): L7Operation {
  const entries = r.map(f, OPERATION_KEYS);
  if (entries.length === 0) r.fail(f.at, f.path, `must not be empty; expected at least one of ${OPERATION_KEYS.join(', ')}`);
  const op: L7Operation = {};
  for (const { key, value } of entries) {
    const k = key as keyof L7Operation;
    op[k] = k === 'ports' || k === 'notPorts' ? portList(r, value) : nonEmptyStrings(r, value);
    if (L7_OPERATION_KEYS.includes(k)) l7Paths.push({ path: value.path, at: value.at });
  }
  return op;
}

function readCondition(r: ObjectReader, f: Field, l7Paths: ReadRule['l7Paths']): L7Condition {
  const fields = byKey(r.map(f, ['key', 'values', 'notValues']));
  const keyField = r.required(f, fields, 'key', `one of ${WHEN_KEYS_TEXT}`);
  const key = r.string(keyField);
  const header = HEADER_KEY.exec(key);
  if (!header && !(L4_WHEN_KEYS as readonly string[]).includes(key)) {
    r.fail(keyField.at, keyField.path, `condition key "${key}" is not supported by the lab (supported: ${WHEN_KEYS_TEXT})`);
  }
  if (header) l7Paths.push({ path: keyField.path, at: keyField.at });
  const c: L7Condition = { key: header ? `request.headers[${header[1].toLowerCase()}]` : key };
  for (const k of ['values', 'notValues'] as const) {
    const v = fields.get(k);
    if (!v) continue;
    if (key === 'source.ip' || key === 'destination.ip') c[k] = ipList(r, v);
    else if (key === 'destination.port') c[k] = portList(r, v);
    else c[k] = r.stringList(v, { nonEmpty: true });
  }
  if (!c.values && !c.notValues) r.fail(f.at, childPath(f.path, 'values'), 'missing; a condition needs values or notValues');
  return c;
}

function readRule(r: ObjectReader, f: Field): ReadRule {
  const out: ReadRule = { rule: {}, path: f.path, at: f.at, l7Paths: [], whenAt: [] };
  if (r.isNull(f)) return out;
  for (const { key, value } of r.map(f, ['from', 'to', 'when'])) {
    if (key === 'from') {
      out.rule.from = r.list(value, 'a list of {source: ...}', { nonEmpty: true }).map((el) => {
        const fields = byKey(r.map(el, ['source']));
        return readSource(r, r.required(el, fields, 'source', 'a map of source conditions'));
      });
    } else if (key === 'to') {
      out.rule.to = r.list(value, 'a list of {operation: ...}', { nonEmpty: true }).map((el) => {
        const fields = byKey(r.map(el, ['operation']));
        return readOperation(r, r.required(el, fields, 'operation', 'a map of operation conditions'), out.l7Paths);
      });
    } else {
      out.rule.when = r.list(value, 'a list of conditions', { nonEmpty: true }).map((el) => {
        out.whenAt.push({ path: el.path, at: el.at });
        return readCondition(r, el, out.l7Paths);
      });
    }
  }
  return out;
}

type Target = L7AuthorizationPolicy['target'];

function readTargetRef(r: ObjectReader, f: Field, namespace: string): string {
  const fields = byKey(r.map(f, ['group', 'kind', 'name', 'namespace']));
  const kindField = r.required(f, fields, 'kind', 'Gateway (the waypoint the policy binds to)');
  const kind = r.string(kindField);
  if (kind !== 'Gateway') {
    r.fail(kindField.at, kindField.path, `targetRef kind "${kind}" is not supported by the lab: only kind Gateway (a waypoint) can be targeted`);
  }
  const group = fields.get('group');
  if (group && r.string(group) !== 'gateway.networking.k8s.io') {
    r.fail(group.at, group.path, `expected "gateway.networking.k8s.io", got "${r.string(group)}"`);
  }
  const ns = fields.get('namespace');
  if (ns && r.string(ns) !== namespace) r.fail(ns.at, ns.path, `a policy can only target a Gateway in its own namespace "${namespace}", got "${r.string(ns)}"`);
  const name = r.required(f, fields, 'name', 'the Gateway\'s name');
  return r.nonEmptyString(name, 'a Gateway name');
}

function read({ r, meta, spec, out }: KindContext): void {
  const entries = r.isNull(spec) ? [] : r.map(spec, ['selector', 'targetRef', 'targetRefs', 'action', 'rules'], {
    provider: 'CUSTOM (ext-authz) is not supported',
  });
  const fields = byKey(entries);
  let action: 'ALLOW' | 'DENY' = 'ALLOW';
  const actionField = fields.get('action');
  if (actionField) {
    const a = r.string(actionField, 'ALLOW or DENY');
    if (a === 'AUDIT' || a === 'CUSTOM') r.fail(actionField.at, actionField.path, `action ${a} is not supported by the lab (supported: ALLOW, DENY)`);
    action = r.oneOf(actionField, ['ALLOW', 'DENY'] as const);
  }
  const waypoints: string[] = [];
  let selector: Record<string, string> | undefined;
  const selField = fields.get('selector');
  const refField = fields.get('targetRef');
  const refsField = fields.get('targetRefs');
  const bound = [selField, refField, refsField].filter((x): x is Field => x !== undefined);
  if (bound.length > 1) r.fail(bound[1].at, bound[1].path, `give only one of selector, targetRef, targetRefs (also ${bound[0].path})`);
  if (selField && !r.isNull(selField)) {
    const labels = matchLabels(r, selField);
    const gw = labels[GATEWAY_NAME_LABEL];
    if (gw !== undefined) {
      if (Object.keys(labels).length > 1) {
        r.fail(selField.at, childPath(selField.path, 'matchLabels'), `select a waypoint by ${GATEWAY_NAME_LABEL} alone (its pods carry no other label the lab knows)`);
      }
      waypoints.push(gw);
    } else if (Object.keys(labels).length > 0) {
      selector = labels;
    }
  }
  if (refField) waypoints.push(readTargetRef(r, refField, meta.namespace));
  if (refsField) waypoints.push(...r.list(refsField, 'a list of targetRefs', { nonEmpty: true }).map((f) => readTargetRef(r, f, meta.namespace)));
  for (const w of waypoints) {
    const at = refField ?? refsField ?? selField!;
    out.refs.push({ type: 'gateway', namespace: meta.namespace, name: w, where: r.where(at.at, at.path) });
  }

  const rulesField = fields.get('rules');
  const rules = rulesField && !r.isNull(rulesField) ? r.list(rulesField, 'a list of rules').map((f) => readRule(r, f)) : [];
  const origin = `AuthorizationPolicy ${meta.namespace}/${meta.name}`;
  const l7 = (target: Target): L7AuthorizationPolicy => ({
    name: meta.name, namespace: meta.namespace, origin, action, target, rules: rules.map((x) => x.rule),
  });
  if (waypoints.length > 0) {
    // A waypoint's pods are never captured by ztunnel, so ztunnel gets nothing of this policy.
    for (const w of waypoints) out.resources.l7Policies.push(l7({ waypoint: w }));
    return;
  }
  const l7Rules = rules.filter((x) => x.l7Paths.length > 0);
  if (l7Rules.length > 0) {
    out.resources.l7Policies.push(l7(selector ? { selector } : { namespace: true }));
    const first = l7Rules[0];
    const fieldsText = l7Rules.flatMap((x) => x.l7Paths.map((l) => l.path)).join(', ');
    const what = action === 'ALLOW'
      ? 'so, as istiod converts it for ztunnel, every ALLOW rule with an L7 field is dropped and never matches: ' +
        'connections that only such a rule would allow are reset'
      : 'so, as istiod converts it for ztunnel, each DENY rule keeps only its L4 part, and an entry left with no L4 field ' +
        'matches nothing (ztunnel 1.18 treats an empty match as no match)';
    out.warnings.push(`${r.where(first.l7Paths[0].at, first.l7Paths[0].path)}: L7 fields (${fieldsText}) but no waypoint enforces this policy: ` +
      `ztunnel only sees connections, ${what}; bind it to a waypoint (targetRef kind Gateway, or selector matchLabels ${GATEWAY_NAME_LABEL})`);
  }
  out.l4Policies.push(toZtunnelPolicy(r, { name: meta.name, namespace: meta.namespace, action, selector, rules }));
}

export const authorizationPolicyKind: KindReader = {
  apiVersions: ['security.istio.io/v1beta1', 'security.istio.io/v1'],
  rootNamespaceAllowed: true,
  read,
};
