// Route selection, as Envoy's route table does it for a waypoint or sidecar: the routes of the
// request's Service port, rules in order, the first rule with a matching `match` entry wins.
// A Service with no routes at all gets Istio's default route (straight to the Service, the
// caller decides its retry policy); a Service with routes none of which match gets Envoy's
// 404 with flag NR. Paths are matched without the query string, as Envoy's path matchers do;
// regular expressions must match the whole path (Envoy's safe_regex is a full match).
import type { HeaderMatcher, HttpMatch, HttpRouteRule, QueryParamMatcher, ServiceRoutes, StringMatcher } from './model.js';

/** What route selection sees of a request. */
export interface RouteRequest {
  /** The destination Service FQDN the proxy resolved (not the Host header). */
  host: string;
  /** The Service port the request came in on. */
  port: number;
  method: string;
  /** :path including the query string. */
  path: string;
  /** Lower-case names, as Node delivers them. */
  headers: Record<string, string | string[] | undefined>;
}

export type RouteSelection =
  | {
      kind: 'rule';
      rule: HttpRouteRule;
      /** The ServiceRoutes the rule belongs to. */
      routes: ServiceRoutes;
      /** Index of the rule in routes.rules (the `http[i]` of a VirtualService). */
      index: number;
      origin: string;
      /** The match entry that hit; absent when the rule has no matches (matches everything). */
      match?: HttpMatch;
    }
  /** No routes for this Service port: Istio's default route to the Service itself. */
  | { kind: 'default' }
  /** Routes exist, none matched: Envoy answers 404, flag NR. */
  | { kind: 'none'; routes: ServiceRoutes };

export function splitPath(path: string): { path: string; query: string } {
  const q = path.indexOf('?');
  return q < 0 ? { path, query: '' } : { path: path.slice(0, q), query: path.slice(q + 1) };
}

const regexCache = new Map<string, RegExp>();

/** Full-match regular expression (RE2 syntax is, for what routes use, a subset of JavaScript's). */
export function fullMatchRegex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern})$`);
    regexCache.set(pattern, re);
  }
  return re;
}

export function stringMatch(m: StringMatcher, value: string): boolean {
  switch (m.kind) {
    case 'Exact':
      return value === m.value;
    case 'Prefix':
      return value.startsWith(m.value);
    case 'RegularExpression':
      return fullMatchRegex(m.value).test(value);
  }
}

/** Gateway API PathPrefix: element-wise, so /foo matches /foo, /foo/ and /foo/bar but not /foobar. */
export function pathPrefixMatch(prefix: string, path: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (p === '/' || p === '') return path.startsWith('/');
  return path === p || path.startsWith(`${p}/`);
}

export function pathMatch(m: NonNullable<HttpMatch['path']>, path: string): boolean {
  return m.kind === 'PathPrefix' ? pathPrefixMatch(m.value, path) : stringMatch(m, path);
}

/** Several values of one header are seen joined by ',' (as Envoy's header matchers see them). */
export function headerValue(headers: RouteRequest['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

export function headerMatch(m: HeaderMatcher, headers: RouteRequest['headers']): boolean {
  const v = headerValue(headers, m.name);
  const hit = v !== undefined && stringMatch(m, v);
  return m.invert ? !hit : hit;
}

/** The first value of each query parameter, percent-decoded. */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!query) return out;
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = safeDecode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : safeDecode(part.slice(eq + 1));
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function queryParamMatch(m: QueryParamMatcher, params: Map<string, string>): boolean {
  const v = params.get(m.name);
  return v !== undefined && stringMatch(m, v);
}

/** One match entry: every present field must hold. */
export function httpMatch(m: HttpMatch, req: RouteRequest, parsed = splitPath(req.path)): boolean {
  if (m.path && !pathMatch(m.path, parsed.path)) return false;
  if (m.method && m.method !== req.method) return false;
  if (m.headers && !m.headers.every((h) => headerMatch(h, req.headers))) return false;
  if (m.queryParams && m.queryParams.length > 0) {
    const params = parseQuery(parsed.query);
    if (!m.queryParams.every((q) => queryParamMatch(q, params))) return false;
  }
  return true;
}

/** The ServiceRoutes for a Service port: Istio uses the first one for the host (a port-specific one wins over a port-less one). */
export function routesFor(all: ServiceRoutes[], host: string, port: number): ServiceRoutes | undefined {
  return all.find((r) => r.host === host && r.port === port) ?? all.find((r) => r.host === host && r.port === undefined);
}

export function selectRoute(all: ServiceRoutes[], req: RouteRequest): RouteSelection {
  const routes = routesFor(all, req.host, req.port);
  if (!routes) return { kind: 'default' };
  const parsed = splitPath(req.path);
  for (let index = 0; index < routes.rules.length; index++) {
    const rule = routes.rules[index];
    if (rule.matches.length === 0) return { kind: 'rule', rule, routes, index, origin: rule.origin };
    const match = rule.matches.find((m) => httpMatch(m, req, parsed));
    if (match) return { kind: 'rule', rule, routes, index, origin: rule.origin, match };
  }
  return { kind: 'none', routes };
}
