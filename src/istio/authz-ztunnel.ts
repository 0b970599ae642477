// istiod's conversion of an AuthorizationPolicy for ztunnel (ambientindex.go handleRule, 1.18-1.20),
// into the topology's PolicySpec, which mesh/authz-convert.ts turns into ztunnel's groups:
//   - an ALLOW rule with an L7 field (to.operation hosts/methods/paths and their not*, or a `when`
//     key that is not L4) is dropped: it can never match;
//   - a DENY rule keeps only its L4 part: each `to` entry keeps ports/notPorts (possibly nothing),
//     each `when` becomes one more match with only its L4 key (nothing for request.headers).
// istiod puts each `when` in a group of its own. PolicySpec has no `when`, so each one becomes one
// more `from` (source.*) or `to` (destination.port) entry instead: ztunnel 1.18 ANDs every entry of
// a group (mesh/authz.ts policyMatches), so an extra entry ANDs exactly like an extra group.
// An entry left empty matches nothing in ztunnel, as in Istio.
import type { PolicyOperation, PolicyRule, PolicySource, PolicySpec } from '../topology/types.js';
import type { L7Condition } from '../l7/model.js';
import type { ObjectReader } from './reader.js';
import type { ReadRule } from './authorization-policy.js';

function whenEntry(c: L7Condition): { source?: PolicySource; operation?: PolicyOperation } {
  const pick = (pos: keyof PolicySource, neg: keyof PolicySource): PolicySource => ({
    ...(c.values ? { [pos]: c.values } : {}), ...(c.notValues ? { [neg]: c.notValues } : {}),
  });
  switch (c.key) {
    case 'source.namespace': return { source: pick('namespaces', 'notNamespaces') };
    case 'source.principal': return { source: pick('principals', 'notPrincipals') };
    case 'source.ip': return { source: pick('ipBlocks', 'notIpBlocks') };
    case 'destination.port':
      return { operation: { ...(c.values ? { ports: c.values } : {}), ...(c.notValues ? { notPorts: c.notValues } : {}) } };
    // request.headers[...] in a DENY rule: istiod emits a match with no field, which matches nothing.
    default: return { source: {} };
  }
}

function convertRule(r: ObjectReader, action: 'ALLOW' | 'DENY', x: ReadRule): PolicyRule | undefined {
  const { rule } = x;
  if (action === 'ALLOW' && x.l7Paths.length > 0) return undefined;
  const out: PolicyRule = {};
  const to = (rule.to ?? []).map((op) => {
    const o: PolicyOperation = {};
    if (op.ports) o.ports = op.ports;
    if (op.notPorts) o.notPorts = op.notPorts;
    return { operation: o };
  });
  const from = (rule.from ?? []).map((s) => ({ source: { ...s } }));
  (rule.when ?? []).forEach((c, i) => {
    if (c.key === 'destination.ip') {
      const w = x.whenAt[i];
      r.fail(w.at, `${w.path}.key`, 'destination.ip conditions are not supported in policies ztunnel enforces ' +
        '(the lab\'s L4 policy has no destination address); bind the policy to a waypoint to use it');
    }
    const e = whenEntry(c);
    if (e.operation) to.push({ operation: e.operation });
    else from.push({ source: e.source ?? {} });
  });
  if (to.length) out.to = to;
  if (from.length) out.from = from;
  return out;
}

export function toZtunnelPolicy(
  r: ObjectReader,
  p: { name: string; namespace: string; action: 'ALLOW' | 'DENY'; selector?: Record<string, string>; rules: ReadRule[] },
): PolicySpec {
  const spec: PolicySpec = { name: p.name, namespace: p.namespace, action: p.action, rules: [] };
  if (p.selector) spec.selector = p.selector;
  for (const x of p.rules) {
    const rule = convertRule(r, p.action, x);
    if (rule) spec.rules.push(rule);
  }
  return spec;
}
