// VirtualService (networking.istio.io v1alpha3/v1beta1), the `http:` part bookinfo uses, as istiod
// translates it (route/route.go, retry/retry.go, 1.18-1.20): a route without `retries` gets
// Istio's default retry policy, `retries.attempts: 0` none; integers in `retryOn` become retriable
// status codes; a fault without `percentage` affects no request.
import type {
  Backend, FaultPolicy, HeaderMatcher, HeaderOps, HttpMatch, HttpRouteRule, QueryParamMatcher, Redirect, RetryPolicy, ServiceRoutes, StringMatcher,
} from '../l7/model.js';
import { DEFAULT_RETRY_POLICY } from '../l7/model.js';
import { defaultRetries } from './common.js';
import { dns1123LabelProblem } from '../topology/k8s-names.js';
import { duration, headerName, HTTP_METHODS, regex, serviceHost } from './common.js';
import { byKey } from './reader.js';
import type { Field, ObjectReader } from './reader.js';
import type { KindContext, KindReader, ParsedResources } from './types.js';

/** Envoy's retry_on conditions that Istio passes through. */
const RETRY_ON = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'];

const NO_MIRROR = 'the lab does not mirror traffic';
const HTTP_NOT_SUPPORTED = {
  mirror: NO_MIRROR, mirrors: NO_MIRROR, mirrorPercent: NO_MIRROR, mirrorPercentage: NO_MIRROR, mirror_percent: NO_MIRROR,
  corsPolicy: 'the lab has no CORS filter',
  delegate: 'the lab does not support VirtualService delegation',
};
const MATCH_NOT_SUPPORTED = {
  scheme: 'match on uri, headers, method, queryParams or withoutHeaders',
  authority: 'the route already belongs to the VirtualService hosts; match on headers instead',
  port: 'the lab applies a VirtualService to every port of its hosts',
  sourceLabels: 'the lab cannot match on the client\'s labels at a waypoint',
  gateways: 'only the mesh gateway exists in the lab',
  sourceNamespace: 'the lab cannot match on the client\'s namespace at a waypoint',
  ignoreUriCase: 'matches are case-sensitive in the lab',
  statPrefix: 'the lab has no per-route stats',
};

function stringMatch(r: ObjectReader, f: Field, kinds: readonly ('exact' | 'prefix' | 'regex')[], why = ''): StringMatcher {
  const others = Object.fromEntries(['exact', 'prefix', 'regex'].filter((k) => !(kinds as string[]).includes(k)).map((k) => [k, why]));
  const entries = r.map(f, kinds, others, `a string match ({${kinds.join('|')}: ...})`);
  if (entries.length !== 1) r.fail(f.at, f.path, `expected exactly one of ${kinds.join(', ')}, got ${entries.length}`);
  const { key, value } = entries[0];
  const v = r.string(value);
  if (key === 'regex') return { kind: 'RegularExpression', value: regex(r, value, v) };
  return { kind: key === 'exact' ? 'Exact' : 'Prefix', value: v };
}

function readMatch(r: ObjectReader, f: Field): HttpMatch {
  const m: HttpMatch = {};
  for (const { key, value } of r.map(f, ['name', 'uri', 'method', 'headers', 'queryParams', 'withoutHeaders'], MATCH_NOT_SUPPORTED)) {
    if (key === 'name') r.string(value);
    else if (key === 'uri') m.path = stringMatch(r, value, ['exact', 'prefix', 'regex']);
    else if (key === 'method') {
      const s = stringMatch(r, value, ['exact'], 'the lab matches the method exactly');
      if (!(HTTP_METHODS as readonly string[]).includes(s.value)) r.fail(value.at, value.path, `unknown HTTP method "${s.value}" (expected one of: ${HTTP_METHODS.join(', ')})`);
      m.method = s.value;
    } else if (key === 'queryParams') {
      m.queryParams = r.entries(value, 'a map of query parameter -> match').map((e): QueryParamMatcher => ({ name: e.key, ...stringMatch(r, e.value, ['exact', 'prefix', 'regex']) }));
    } else {
      const hs = r.entries(value, 'a map of header -> match').map((e): HeaderMatcher => {
        const name = headerName(r, e.value, e.key);
        const h: HeaderMatcher = { name, ...stringMatch(r, e.value, ['exact', 'prefix', 'regex']) };
        if (key === 'withoutHeaders') h.invert = true;
        return h;
      });
      m.headers = [...(m.headers ?? []), ...hs];
    }
  }
  return m;
}

function headerOps(r: ObjectReader, f: Field): HeaderOps {
  const ops: HeaderOps = {};
  for (const { key, value } of r.map(f, ['set', 'add', 'remove'])) {
    if (key === 'remove') ops.remove = r.list(value, 'a list of header names').map((i) => headerName(r, i, r.string(i)));
    else {
      const out: Record<string, string> = {};
      for (const e of r.entries(value, 'a map of header -> value')) out[headerName(r, e.value, e.key)] = r.string(e.value);
      ops[key as 'set' | 'add'] = out;
    }
  }
  return ops;
}

function percentage(r: ObjectReader, f: Field | undefined): number | undefined {
  if (!f) return undefined;
  return r.number(r.required(f, byKey(r.map(f, ['value'])), 'value', 'a percentage 0-100'), 0, 100);
}

function readFault(r: ObjectReader, f: Field, warn: (at: Field, msg: string) => void): FaultPolicy {
  const fault: FaultPolicy = {};
  for (const { key, value } of r.map(f, ['delay', 'abort'])) {
    if (key === 'delay') {
      const e = byKey(r.map(value, ['fixedDelay', 'percentage', 'percent'], { exponentialDelay: 'istiod drops it too; use fixedDelay' }));
      const fixedDelayMs = duration(r, r.required(value, e, 'fixedDelay', 'a duration like "7s"'), 'istio');
      // Unset percentage: istiod falls back to the deprecated integer `percent`, default 0.
      const pct = percentage(r, e.get('percentage')) ?? (e.has('percent') ? r.integer(e.get('percent')!, 0, 100) : undefined);
      if (pct === undefined) warn(value, 'no percentage: Istio delays no request (set percentage: {value: 100} to delay every request)');
      fault.delay = { fixedDelayMs, percentage: pct ?? 0 };
    } else {
      const e = byKey(r.map(value, ['httpStatus', 'percentage'], {
        grpcStatus: 'the lab aborts with an HTTP status only', http2Error: 'the lab aborts with an HTTP status only',
      }));
      const httpStatus = r.integer(r.required(value, e, 'httpStatus', 'an HTTP status 200-599'), 200, 599);
      const pct = percentage(r, e.get('percentage'));
      if (pct === undefined) warn(value, 'no percentage: Istio aborts no request (set percentage: {value: 100} to abort every request)');
      fault.abort = { httpStatus, percentage: pct ?? 0 };
    }
  }
  return fault;
}

function readRetries(r: ObjectReader, f: Field): RetryPolicy | undefined {
  const e = byKey(r.map(f, ['attempts', 'perTryTimeout', 'retryOn'], {
    retryRemoteLocalities: 'the lab has one locality', backoff: 'the lab uses Envoy\'s default back-off',
  }));
  // istiod (ConvertPolicy): attempts <= 0, including left out, explicitly disables retries.
  const attempts = e.has('attempts') ? r.integer(e.get('attempts')!, 0, 1000) : 0;
  if (attempts === 0) return undefined;
  const policy: RetryPolicy = { attempts, retryOn: [...DEFAULT_RETRY_POLICY.retryOn], retriableStatusCodes: [...DEFAULT_RETRY_POLICY.retriableStatusCodes] };
  const per = e.get('perTryTimeout');
  if (per) policy.perTryTimeoutMs = duration(r, per, 'istio');
  const on = e.get('retryOn');
  if (on) {
    const parts = r.string(on, 'a comma-separated list like "5xx,connect-failure"').split(',').map((s) => s.trim()).filter((s) => s !== '');
    policy.retryOn = [];
    policy.retriableStatusCodes = [];
    for (const p of parts) {
      if (/^\d+$/.test(p)) {
        const code = Number(p);
        if (code < 100 || code > 599) r.fail(on.at, on.path, `invalid status code ${p} in retryOn (expected 100-599)`);
        policy.retriableStatusCodes.push(code);
      } else if (RETRY_ON.includes(p)) policy.retryOn.push(p);
      else r.fail(on.at, on.path, `unknown retryOn condition "${p}" (expected status codes or: ${RETRY_ON.join(', ')})`);
    }
    if (policy.retriableStatusCodes.length > 0 && !policy.retryOn.includes('retriable-status-codes')) policy.retryOn.push('retriable-status-codes');
  }
  return policy;
}

function readDestinations(r: ObjectReader, f: Field, namespace: string, out: ParsedResources): Backend[] {
  const items = r.list(f, 'a list of {destination, weight}', { nonEmpty: true });
  const backends = items.map((item): Backend => {
    const e = byKey(r.map(item, ['destination', 'weight'], { headers: 'put headers on the http route, not on one destination' }));
    const dest = r.required(item, e, 'destination', '{host: <Service>, subset: <name>, port: {number: <port>}}');
    const d = byKey(r.map(dest, ['host', 'subset', 'port']));
    const host = serviceHost(r, r.required(dest, d, 'host', 'a Service host'), namespace);
    const b: Backend = { host, weight: 0 };
    const port = d.get('port');
    if (port) b.port = r.integer(r.required(port, byKey(r.map(port, ['number'])), 'number', 'the Service port'), 1, 65535);
    const subset = d.get('subset');
    if (subset) {
      b.subset = r.checked(subset, r.string(subset), dns1123LabelProblem);
      out.refs.push({ type: 'subset', host, subset: b.subset, where: r.where(subset.at, subset.path) });
    }
    out.refs.push({ type: 'service', host, port: b.port, where: r.where(dest.at, dest.path), what: 'destination' });
    const w = e.get('weight');
    if (w) b.weight = r.integer(w, 0, 100);
    else if (items.length === 1) b.weight = 100;
    else r.fail(item.at, `${item.path}.weight`, 'missing; with more than one destination each needs a weight (they add up to 100)');
    return b;
  });
  const sum = backends.reduce((s, b) => s + b.weight, 0);
  if (items.length > 1 && sum !== 100) r.fail(f.at, f.path, `the weights add up to ${sum}; Istio requires 100`);
  // Envoy's weighted_clusters: a weight-0 entry is dropped unless it is the only one.
  return backends.length === 1 ? [{ ...backends[0], weight: 100 }] : backends.filter((b) => b.weight > 0);
}

function readHttp(r: ObjectReader, f: Field, namespace: string, origin: string, out: ParsedResources): HttpRouteRule {
  const entries = r.map(f, ['name', 'match', 'route', 'redirect', 'directResponse', 'rewrite', 'timeout', 'retries', 'fault', 'headers'], HTTP_NOT_SUPPORTED);
  const fields = byKey(entries);
  const rule: HttpRouteRule = { origin, matches: [], backends: [] };
  const warn = (at: Field, msg: string): void => { out.warnings.push(`${r.where(at.at, at.path)}: ${msg}`); };
  let retriesSet = false;
  for (const { key, value } of entries) {
    switch (key) {
      case 'name': r.string(value); break;
      case 'match': rule.matches = r.list(value, 'a list of matches').map((m) => readMatch(r, m)); break;
      case 'route': rule.backends = readDestinations(r, value, namespace, out); break;
      case 'redirect': {
        const rd: Redirect = { statusCode: 301 };
        for (const { key: k, value: v } of r.map(value, ['uri', 'authority', 'port', 'scheme', 'redirectCode'], {
          derivePort: 'give the port explicitly', uriRegexRewrite: 'the lab rewrites with plain strings',
        })) {
          if (k === 'uri') rd.path = r.nonEmptyString(v, 'a path');
          else if (k === 'authority') rd.hostname = r.nonEmptyString(v, 'a host');
          else if (k === 'port') rd.port = r.integer(v, 1, 65535);
          else if (k === 'scheme') rd.scheme = r.oneOf(v, ['http', 'https'] as const);
          else {
            const code = r.integer(v, 300, 399);
            if (![301, 302, 303, 307, 308].includes(code)) r.fail(v.at, v.path, `expected one of 301, 302, 303, 307, 308, got ${code}`);
            rd.statusCode = code as Redirect['statusCode'];
          }
        }
        rule.redirect = rd;
        break;
      }
      case 'directResponse': {
        const e = byKey(r.map(value, ['status', 'body']));
        const status = r.integer(r.required(value, e, 'status', 'an HTTP status'), 200, 599);
        let body = '';
        const b = e.get('body');
        if (b) body = r.string(r.required(b, byKey(r.map(b, ['string'], { bytes: 'give the body as a string' })), 'string', 'the body text'));
        rule.directResponse = { status, body };
        break;
      }
      case 'rewrite':
        rule.rewrite = {};
        for (const { key: k, value: v } of r.map(value, ['uri', 'authority'], { uriRegexRewrite: 'the lab rewrites with plain strings' })) {
          // istiod sets Envoy's prefix_rewrite: the matched prefix (or the whole matched path) is replaced.
          if (k === 'uri') rule.rewrite.prefixPath = r.string(v);
          else rule.rewrite.hostname = r.nonEmptyString(v, 'a host');
        }
        break;
      case 'timeout': rule.timeoutMs = duration(r, value, 'istio'); break;
      case 'retries': retriesSet = true; rule.retries = readRetries(r, value); break;
      case 'fault': rule.fault = readFault(r, value, warn); break;
      case 'headers':
        for (const { key: k, value: v } of r.map(value, ['request', 'response'])) {
          if (k === 'request') rule.requestHeaders = headerOps(r, v);
          else rule.responseHeaders = headerOps(r, v);
        }
        break;
    }
  }
  const outcomes = ['route', 'redirect', 'directResponse'].filter((k) => fields.has(k));
  if (outcomes.length === 0) r.fail(f.at, `${f.path}.route`, 'missing; an http route needs route, redirect or directResponse');
  if (outcomes.length > 1) r.fail(f.at, f.path, `give only one of route, redirect, directResponse (got ${outcomes.join(', ')})`);
  // A redirect or direct response has no upstream, so no route action to carry a retry policy.
  if (!retriesSet && rule.backends.length > 0) rule.retries = defaultRetries();
  return rule;
}

function read({ r, meta, spec, object, out }: KindContext): void {
  if (r.isNull(spec)) r.fail(object.at, spec.path, 'missing; expected {hosts: [...], http: [...]}');
  const entries = r.map(spec, ['hosts', 'gateways', 'http', 'exportTo'], {
    tcp: 'the lab routes HTTP only; TCP traffic goes straight to the Service',
    tls: 'the lab routes HTTP only; TLS traffic goes straight to the Service',
  });
  const fields = byKey(entries);
  const hostsField = r.required(spec, fields, 'hosts', 'a list of Service hosts, e.g. [reviews]');
  const hostItems = r.list(hostsField, 'a list of Service hosts', { nonEmpty: true });
  const hosts = hostItems.map((h) => serviceHost(r, h, meta.namespace));
  const gateways = fields.get('gateways');
  if (gateways) {
    for (const g of r.list(gateways, 'a list of gateways')) {
      const name = r.string(g);
      if (name !== 'mesh') r.fail(g.at, g.path, `gateway "${name}" is not supported by the lab: only "mesh" (routes for traffic inside the mesh)`);
    }
  }
  const exportTo = fields.get('exportTo');
  if (exportTo) {
    for (const x of r.list(exportTo, 'a list of namespaces')) {
      if (r.string(x) !== '*') r.fail(x.at, x.path, `exportTo "${r.string(x)}" is not supported by the lab: only "*" (visible everywhere, the default)`);
    }
  }
  const origin = `VirtualService ${meta.namespace}/${meta.name}`;
  const httpField = r.required(spec, fields, 'http', 'a list of http routes, e.g. [{route: [{destination: {host: reviews}}]}]');
  const rules = r.list(httpField, 'a list of http routes', { nonEmpty: true }).map((h, i) => readHttp(r, h, meta.namespace, `${origin} http[${i}]`, out));
  hosts.forEach((host, i) => {
    const where = r.where(hostItems[i].at, hostItems[i].path);
    out.refs.push({ type: 'service', host, where, what: 'host' });
    out.refs.push({ type: 'routes', host, where });
    const routes: ServiceRoutes = { host, rules, origin };
    out.resources.routes.push(routes);
  });
}

export const virtualServiceKind: KindReader = {
  apiVersions: ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1'],
  read,
};
