// Route selection as a table: which rule of which ServiceRoutes a request hits, with Envoy's
// matcher semantics (paths without the query, segment-wise PathPrefix, full-match regex,
// inverted headers, method, query parameters) and the default/NR outcomes.
import t from 'tap';
import type { HttpMatch, HttpRouteRule, ServiceRoutes } from '../../src/l7/model.js';
import { httpMatch, pathPrefixMatch, selectRoute, type RouteRequest } from '../../src/l7/route-match.js';

const HOST = 'reviews.default.svc.cluster.local';
const rule = (origin: string, matches: HttpMatch[]): HttpRouteRule => ({ origin, matches, backends: [{ host: HOST, weight: 100 }] });
const req = (r: Partial<RouteRequest> = {}): RouteRequest => ({ host: HOST, port: 9080, method: 'GET', path: '/', headers: {}, ...r });

t.test('match entry semantics', async (t) => {
  const cases: Array<[string, HttpMatch, Partial<RouteRequest>, boolean]> = [
    ['empty match entry matches all', {}, { path: '/anything' }, true],
    ['exact path', { path: { kind: 'Exact', value: '/ratings' } }, { path: '/ratings' }, true],
    ['exact path ignores query', { path: { kind: 'Exact', value: '/ratings' } }, { path: '/ratings?x=1' }, true],
    ['exact path is not a prefix', { path: { kind: 'Exact', value: '/ratings' } }, { path: '/ratings/1' }, false],
    ['string prefix matches mid-segment', { path: { kind: 'Prefix', value: '/foo' } }, { path: '/foobar' }, true],
    ['PathPrefix /foo matches /foo', { path: { kind: 'PathPrefix', value: '/foo' } }, { path: '/foo' }, true],
    ['PathPrefix /foo matches /foo/bar', { path: { kind: 'PathPrefix', value: '/foo' } }, { path: '/foo/bar' }, true],
    ['PathPrefix /foo not /foobar', { path: { kind: 'PathPrefix', value: '/foo' } }, { path: '/foobar' }, false],
    ['PathPrefix /foo/ matches /foo', { path: { kind: 'PathPrefix', value: '/foo/' } }, { path: '/foo' }, true],
    ['PathPrefix / matches all', { path: { kind: 'PathPrefix', value: '/' } }, { path: '/x/y' }, true],
    ['regex is a full match', { path: { kind: 'RegularExpression', value: '/v[0-9]+' } }, { path: '/v12' }, true],
    ['regex does not match a part', { path: { kind: 'RegularExpression', value: '/v[0-9]+' } }, { path: '/v12/x' }, false],
    ['regex alternation anchored as a whole', { path: { kind: 'RegularExpression', value: '/a|/b' } }, { path: '/bx' }, false],
    ['regex ignores query', { path: { kind: 'RegularExpression', value: '/v[0-9]+' } }, { path: '/v1?q=2' }, true],
    ['method', { method: 'POST' }, { method: 'POST' }, true],
    ['method miss', { method: 'POST' }, { method: 'GET' }, false],
    ['header exact', { headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }, { headers: { 'end-user': 'jason' } }, true],
    ['header exact miss', { headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }, { headers: { 'end-user': 'bob' } }, false],
    ['header absent', { headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }, {}, false],
    ['header name case-insensitive', { headers: [{ name: 'End-User', kind: 'Exact', value: 'jason' }] }, { headers: { 'end-user': 'jason' } }, true],
    ['header prefix', { headers: [{ name: 'user-agent', kind: 'Prefix', value: 'curl/' }] }, { headers: { 'user-agent': 'curl/8.0' } }, true],
    ['header regex', { headers: [{ name: 'x-v', kind: 'RegularExpression', value: 'v[12]' }] }, { headers: { 'x-v': 'v2' } }, true],
    ['multi-value header joined by comma', { headers: [{ name: 'x-a', kind: 'Exact', value: '1,2' }] }, { headers: { 'x-a': ['1', '2'] } }, true],
    ['inverted header absent matches', { headers: [{ name: 'x-debug', kind: 'Exact', value: '1', invert: true }] }, {}, true],
    ['inverted header present matches not', { headers: [{ name: 'x-debug', kind: 'Exact', value: '1', invert: true }] }, { headers: { 'x-debug': '1' } }, false],
    ['inverted header other value matches', { headers: [{ name: 'x-debug', kind: 'Exact', value: '1', invert: true }] }, { headers: { 'x-debug': '0' } }, true],
    ['all headers must match', { headers: [{ name: 'a', kind: 'Exact', value: '1' }, { name: 'b', kind: 'Exact', value: '2' }] }, { headers: { a: '1' } }, false],
    ['query param exact', { queryParams: [{ name: 'v', kind: 'Exact', value: '2' }] }, { path: '/p?a=1&v=2' }, true],
    ['query param decoded', { queryParams: [{ name: 'q', kind: 'Exact', value: 'a b' }] }, { path: '/p?q=a%20b' }, true],
    ['query param first value wins', { queryParams: [{ name: 'v', kind: 'Exact', value: '2' }] }, { path: '/p?v=1&v=2' }, false],
    ['query param absent', { queryParams: [{ name: 'v', kind: 'Exact', value: '2' }] }, { path: '/p' }, false],
    ['query param regex', { queryParams: [{ name: 'v', kind: 'RegularExpression', value: '\\d+' }] }, { path: '/?v=42' }, true],
    ['every field must match', { path: { kind: 'Prefix', value: '/api' }, method: 'GET', headers: [{ name: 'x', kind: 'Exact', value: '1' }] }, { path: '/api/x', headers: { x: '1' }, method: 'PUT' }, false],
  ];
  for (const [name, m, r, want] of cases) t.equal(httpMatch(m, req(r)), want, name);
});

t.test('PathPrefix helper edge cases', async (t) => {
  t.ok(pathPrefixMatch('/foo', '/foo/'));
  t.notOk(pathPrefixMatch('/foo/bar', '/foo'));
  t.ok(pathPrefixMatch('', '/x'));
});

t.test('selectRoute: first match in order, origin and index, default and NR', async (t) => {
  const vs: ServiceRoutes = {
    host: HOST,
    origin: 'VirtualService default/reviews',
    rules: [
      rule('VirtualService default/reviews http[0]', [{ headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }]),
      rule('VirtualService default/reviews http[1]', [{ path: { kind: 'Prefix', value: '/api' } }, { method: 'POST' }]),
      rule('VirtualService default/reviews http[2]', [{ path: { kind: 'Exact', value: '/health' } }]),
    ],
  };
  const catchAll: ServiceRoutes = { host: 'ratings.default.svc.cluster.local', origin: 'HTTPRoute default/ratings', rules: [rule('HTTPRoute default/ratings rule[0]', [])] };
  const portOnly: ServiceRoutes = { host: 'details.default.svc.cluster.local', port: 9080, origin: 'VS details 9080', rules: [rule('VS details 9080 http[0]', [])] };
  const portless: ServiceRoutes = { host: 'details.default.svc.cluster.local', origin: 'VS details any', rules: [rule('VS details any http[0]', [])] };
  const routes = [vs, catchAll, portless, portOnly];
  const cases: Array<[string, Partial<RouteRequest>, string]> = [
    ['header rule first', { headers: { 'end-user': 'jason' }, path: '/api' }, 'rule:0'],
    ['second rule by prefix', { path: '/api/v1' }, 'rule:1'],
    ['second rule by its second match (OR)', { method: 'POST', path: '/x' }, 'rule:1'],
    ['third rule', { path: '/health' }, 'rule:2'],
    ['nothing matches -> NR', { path: '/other' }, 'none'],
    ['catch-all rule', { host: 'ratings.default.svc.cluster.local', path: '/x' }, 'rule:0'],
    ['no routes for the host -> default', { host: 'productpage.default.svc.cluster.local' }, 'default'],
    ['port-specific routes win over port-less', { host: 'details.default.svc.cluster.local', port: 9080 }, 'origin:VS details 9080 http[0]'],
    ['port-less routes serve other ports', { host: 'details.default.svc.cluster.local', port: 8080 }, 'origin:VS details any http[0]'],
  ];
  for (const [name, r, want] of cases) {
    const s = selectRoute(routes, req(r));
    const got = s.kind === 'rule' ? (want.startsWith('origin:') ? `origin:${s.origin}` : `rule:${s.index}`) : s.kind;
    t.equal(got, want, name);
  }
  const hit = selectRoute(routes, req({ path: '/api/v1' }));
  t.equal(hit.kind === 'rule' && hit.origin, 'VirtualService default/reviews http[1]', 'origin of the rule');
  t.same(hit.kind === 'rule' && hit.match, { path: { kind: 'Prefix', value: '/api' } }, 'the match entry that hit');
});
