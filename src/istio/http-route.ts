// HTTPRoute (Gateway API v1beta1/v1) attached to a Service (GAMMA: parentRefs kind Service), as
// istiod converts it (pilot/pkg/config/kube/gateway/conversion.go, 1.20): backend weight missing =
// 1, weight 0 dropped, every weight 0 -> direct response 500; filters RequestHeaderModifier,
// ResponseHeaderModifier, RequestRedirect, URLRewrite; timeouts.request -> route timeout,
// timeouts.backendRequest -> timeout too (an HTTPRoute has no retries to put it on). The routes
// carry Istio's default retry policy, as every waypoint route built from an HTTPRoute does.
import type { Backend, HeaderMatcher, HeaderOps, HttpMatch, HttpRouteRule, QueryParamMatcher, Redirect, Rewrite, ServiceRoutes } from '../l7/model.js';
import { dns1123LabelProblem } from '../topology/k8s-names.js';
import { defaultRetries, duration, headerName, HTTP_METHODS, regex, serviceFqdn } from './common.js';
import { byKey, childPath } from './reader.js';
import type { Field, ObjectReader } from './reader.js';
import type { KindContext, KindReader, ParsedResources } from './types.js';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

function readParentRef(r: ObjectReader, f: Field, namespace: string): { host: string; port?: number } {
  const fields = byKey(r.map(f, ['group', 'kind', 'name', 'namespace', 'port'], {
    sectionName: 'attach to a Service port with "port"',
  }));
  const kindField = fields.get('kind');
  const kind = kindField ? r.string(kindField) : 'Gateway';
  const name = r.nonEmptyString(r.required(f, fields, 'name', 'the Service\'s name'), 'a Service name');
  if (kind !== 'Service') {
    const at = kindField ?? f;
    r.fail(at.at, kindField ? kindField.path : childPath(f.path, 'kind'), `parentRef to ${kind} "${name}" is not supported by the lab: ` +
      'routes attach to a Service (kind: Service, group: ""), whose waypoint applies them; the lab has no ingress Gateway');
  }
  const group = fields.get('group');
  // Istio 1.18's own sample leaves group out for kind Service; 1.20's writes group: "".
  if (group && !['', 'core'].includes(r.string(group))) r.fail(group.at, group.path, `expected "" (the core group of Service), got "${r.string(group)}"`);
  const nsField = fields.get('namespace');
  const ns = nsField ? r.checked(nsField, r.string(nsField), dns1123LabelProblem) : namespace;
  r.checked(fields.get('name')!, name, dns1123LabelProblem);
  const portField = fields.get('port');
  return portField ? { host: serviceFqdn(name, ns), port: r.integer(portField, 1, 65535) } : { host: serviceFqdn(name, ns) };
}

function readMatch(r: ObjectReader, f: Field): HttpMatch {
  const m: HttpMatch = {};
  for (const { key, value } of r.map(f, ['path', 'headers', 'queryParams', 'method'])) {
    if (key === 'path') {
      const p = byKey(r.map(value, ['type', 'value']));
      const typeField = p.get('type');
      const type = typeField ? r.oneOf(typeField, ['Exact', 'PathPrefix', 'RegularExpression'] as const) : 'PathPrefix';
      const vField = p.get('value');
      const v = vField ? r.string(vField) : '/';
      if (type !== 'RegularExpression' && !v.startsWith('/')) r.fail(vField!.at, vField!.path, `expected a path starting with "/", got "${v}"`);
      if (type === 'RegularExpression') regex(r, vField!, v);
      m.path = type === 'PathPrefix' ? { kind: 'PathPrefix', value: v } : { kind: type, value: v };
    } else if (key === 'method') {
      m.method = r.oneOf(value, HTTP_METHODS);
    } else {
      const items = r.list(value, `a list of {name, value}`).map((item) => {
        const e = byKey(r.map(item, ['type', 'name', 'value']));
        const typeField = e.get('type');
        const type = typeField ? r.oneOf(typeField, ['Exact', 'RegularExpression'] as const) : 'Exact';
        const nameField = r.required(item, e, 'name', key === 'headers' ? 'the header name' : 'the query parameter name');
        const rawName = r.nonEmptyString(nameField, 'a name');
        const name = key === 'headers' ? headerName(r, nameField, rawName) : rawName;
        const vField = r.required(item, e, 'value', 'the value to match');
        const v = r.string(vField);
        if (type === 'RegularExpression') regex(r, vField, v);
        return { name, kind: type, value: v };
      });
      if (key === 'headers') m.headers = items as HeaderMatcher[];
      else m.queryParams = items as QueryParamMatcher[];
    }
  }
  return m;
}

function headerModifier(r: ObjectReader, f: Field): HeaderOps {
  const ops: HeaderOps = {};
  for (const { key, value } of r.map(f, ['set', 'add', 'remove'])) {
    if (key === 'remove') {
      ops.remove = r.list(value, 'a list of header names').map((item) => headerName(r, item, r.string(item)));
      continue;
    }
    const out: Record<string, string> = {};
    for (const item of r.list(value, 'a list of {name, value}')) {
      const e = byKey(r.map(item, ['name', 'value']));
      const nameField = r.required(item, e, 'name', 'the header name');
      out[headerName(r, nameField, r.string(nameField))] = r.string(r.required(item, e, 'value', 'the header value'));
    }
    ops[key as 'set' | 'add'] = out;
  }
  return ops;
}

function pathModifier(r: ObjectReader, f: Field, prefixMatch: boolean): { path?: string; prefixPath?: string } {
  const e = byKey(r.map(f, ['type', 'replaceFullPath', 'replacePrefixMatch']));
  const type = r.oneOf(r.required(f, e, 'type', 'ReplaceFullPath or ReplacePrefixMatch'), ['ReplaceFullPath', 'ReplacePrefixMatch'] as const);
  const key = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const v = r.string(r.required(f, e, key, `the ${type === 'ReplaceFullPath' ? 'new path' : 'new prefix'}`));
  if (type === 'ReplacePrefixMatch' && !prefixMatch) {
    r.fail(f.at, f.path, 'ReplacePrefixMatch needs every match of the rule to have a PathPrefix path');
  }
  return type === 'ReplaceFullPath' ? { path: v } : { prefixPath: v };
}

function readRule(r: ObjectReader, f: Field, namespace: string, origin: string, out: ParsedResources): HttpRouteRule {
  const entries = r.map(f, ['matches', 'filters', 'backendRefs', 'timeouts'], {
    retry: 'HTTPRoute retries are not in Istio 1.18-1.20; use a VirtualService',
    sessionPersistence: 'the lab has no session persistence',
  });
  const fields = byKey(entries);
  const rule: HttpRouteRule = { origin, matches: [], backends: [] };
  const matches = fields.get('matches');
  if (matches && !r.isNull(matches)) rule.matches = r.list(matches, 'a list of matches').map((m) => readMatch(r, m));
  // A match without a path is Gateway API's default PathPrefix "/".
  const prefixMatch = rule.matches.every((m) => !m.path || m.path.kind === 'PathPrefix');
  const filters = fields.get('filters');
  let redirectAt: Field | undefined;
  if (filters && !r.isNull(filters)) {
    for (const item of r.list(filters, 'a list of filters')) {
      const e = byKey(r.map(item, ['type', 'requestHeaderModifier', 'responseHeaderModifier', 'requestRedirect', 'urlRewrite'], {
        requestMirror: 'the lab does not mirror traffic', extensionRef: 'the lab has no filter extensions',
      }));
      const typeField = r.required(item, e, 'type', 'the filter type');
      const type = r.string(typeField);
      const SUPPORTED = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'];
      if (!SUPPORTED.includes(type)) {
        r.fail(typeField.at, typeField.path, `filter type "${type}" is not supported by the lab (supported: ${SUPPORTED.join(', ')})`);
      }
      const field = type.charAt(0).toLowerCase() + type.slice(1);
      const key = type === 'URLRewrite' ? 'urlRewrite' : field;
      const body = r.required(item, e, key, `the ${type} settings`);
      if (type === 'RequestHeaderModifier') rule.requestHeaders = headerModifier(r, body);
      else if (type === 'ResponseHeaderModifier') rule.responseHeaders = headerModifier(r, body);
      else if (type === 'URLRewrite') {
        const rw: Rewrite = {};
        for (const { key: k, value } of r.map(body, ['hostname', 'path'])) {
          if (k === 'hostname') rw.hostname = r.nonEmptyString(value, 'a hostname');
          else Object.assign(rw, pathModifier(r, value, prefixMatch));
        }
        rule.rewrite = rw;
      } else {
        redirectAt = item;
        const rd: Redirect = { statusCode: 302 };
        for (const { key: k, value } of r.map(body, ['scheme', 'hostname', 'path', 'port', 'statusCode'])) {
          if (k === 'scheme') rd.scheme = r.oneOf(value, ['http', 'https'] as const);
          else if (k === 'hostname') rd.hostname = r.nonEmptyString(value, 'a hostname');
          else if (k === 'port') rd.port = r.integer(value, 1, 65535);
          else if (k === 'path') Object.assign(rd, pathModifier(r, value, prefixMatch));
          else {
            const code = r.integer(value, 300, 399);
            if (code !== 301 && code !== 302) r.fail(value.at, value.path, `expected 301 or 302 (what Gateway API allows), got ${code}`);
            rd.statusCode = code;
          }
        }
        rule.redirect = rd;
      }
    }
  }
  const refs = fields.get('backendRefs');
  const backends: Backend[] = [];
  if (refs && !r.isNull(refs)) {
    for (const item of r.list(refs, 'a list of backendRefs')) {
      const e = byKey(r.map(item, ['group', 'kind', 'name', 'namespace', 'port', 'weight'], {
        filters: 'per-backend filters are not supported; put filters on the rule',
      }));
      const kindField = e.get('kind');
      if (kindField && r.string(kindField) !== 'Service') r.fail(kindField.at, kindField.path, `backendRef kind "${r.string(kindField)}" is not supported by the lab (supported: Service)`);
      const group = e.get('group');
      if (group && !['', 'core'].includes(r.string(group))) r.fail(group.at, group.path, `expected "" (the core group of Service), got "${r.string(group)}"`);
      const nameField = r.required(item, e, 'name', 'the Service\'s name');
      const name = r.checked(nameField, r.string(nameField), dns1123LabelProblem);
      const nsField = e.get('namespace');
      if (nsField && r.string(nsField) !== namespace) {
        r.fail(nsField.at, nsField.path, `a backend in another namespace needs a ReferenceGrant, which the lab does not support; use a Service in "${namespace}"`);
      }
      const port = r.integer(r.required(item, e, 'port', 'the Service port (required for a Service backend)'), 1, 65535);
      const weightField = e.get('weight');
      const weight = weightField ? r.integer(weightField, 0, 1_000_000) : 1;
      backends.push({ host: serviceFqdn(name, namespace), port, weight });
      // Checked even with weight 0: a misspelt backend is a mistake either way.
      out.refs.push({ type: 'service', host: serviceFqdn(name, namespace), port, where: r.where(item.at, item.path), what: 'backendRef' });
    }
  }
  if (rule.redirect && backends.length > 0) {
    r.fail(redirectAt!.at, redirectAt!.path, 'a rule with a RequestRedirect cannot also have backendRefs (Istio would redirect and silently ignore them)');
  }
  if (rule.redirect && rule.rewrite) r.fail(redirectAt!.at, redirectAt!.path, 'RequestRedirect and URLRewrite cannot be on the same rule (Gateway API)');
  if (!rule.redirect) {
    rule.backends = backends.filter((b) => b.weight > 0);
    // Gateway API: a rule with no backend of weight > 0 must answer 500 (istiod: DirectResponse 500).
    if (rule.backends.length === 0) rule.directResponse = { status: 500, body: '' };
    else rule.retries = defaultRetries();
  }
  const timeouts = fields.get('timeouts');
  if (timeouts && !r.isNull(timeouts)) {
    for (const { key, value } of r.map(timeouts, ['request', 'backendRequest'])) {
      const ms = duration(r, value, 'gateway-api');
      // 1.20: request -> timeout; backendRequest -> perTryTimeout with retries, else timeout (no HTTPRoute retries).
      if (ms > 0 && (key === 'request' || rule.timeoutMs === undefined)) rule.timeoutMs = ms;
    }
  }
  return rule;
}

function read({ r, meta, spec, object, out }: KindContext): void {
  if (r.isNull(spec)) r.fail(object.at, spec.path, 'missing; expected {parentRefs: [...], rules: [...]}');
  const fields = byKey(r.map(spec, ['parentRefs', 'rules'], {
    hostnames: 'a route attached to a Service matches that Service\'s traffic; leave hostnames out',
  }));
  const parentsField = r.required(spec, fields, 'parentRefs', 'a list with the Service the route attaches to, e.g. [{kind: Service, group: "", name: reviews, port: 9080}]');
  const parentItems = r.list(parentsField, 'a list of parentRefs', { nonEmpty: true });
  const parents = parentItems.map((p) => readParentRef(r, p, meta.namespace));
  const origin = `HTTPRoute ${meta.namespace}/${meta.name}`;
  const rulesField = r.required(spec, fields, 'rules', 'a list of rules, e.g. [{backendRefs: [{name: reviews-v1, port: 9080}]}]');
  const ruleItems = r.list(rulesField, 'a list of rules', { nonEmpty: true });
  const rules = ruleItems.map((f, i) => readRule(r, f, meta.namespace, `${origin} rules[${i}]`, out));
  parents.forEach((p, i) => {
    const where = r.where(parentItems[i].at, parentItems[i].path);
    out.refs.push({ type: 'service', host: p.host, port: p.port, where, what: 'parentRef' });
    out.refs.push({ type: 'routes', host: p.host, port: p.port, where });
    const routes: ServiceRoutes = { host: p.host, rules: rules.map((x) => ({ ...x })), origin };
    if (p.port !== undefined) routes.port = p.port;
    out.resources.routes.push(routes);
  });
}

export const httpRouteKind: KindReader = {
  apiVersions: [`${GATEWAY_GROUP}/v1beta1`, `${GATEWAY_GROUP}/v1`],
  read,
};
