// L7 AuthorizationPolicy as a table: Istio's decision order and every from/to/when field with
// its not form, string wildcards, case-insensitive hosts and request headers.
import t from 'tap';
import { authorizeRequest, istioValueMatch, ruleMatch } from '../../src/l7/authz.js';
import type { HttpRequestFacts, L7AuthorizationPolicy, L7Rule } from '../../src/l7/model.js';

const facts = (f: Partial<HttpRequestFacts> = {}): HttpRequestFacts => ({
  method: 'GET',
  path: '/productpage',
  host: 'productpage.default.svc.cluster.local:9080',
  headers: { 'x-token': 'admin', 'user-agent': 'curl/8.0' },
  srcIp: '10.244.0.5',
  srcPrincipal: 'cluster.local/ns/default/sa/sleep',
  srcNamespace: 'default',
  dstIp: '10.96.0.20',
  dstPort: 9080,
  ...f,
});
const pol = (action: 'ALLOW' | 'DENY', rules: L7Rule[], name = action.toLowerCase()): L7AuthorizationPolicy => ({
  name,
  namespace: 'default',
  origin: `AuthorizationPolicy default/${name}`,
  action,
  target: { waypoint: 'waypoint' },
  rules,
});

t.test('Istio string values', async (t) => {
  const cases: Array<[string, string | undefined, boolean, boolean?]> = [
    ['*', 'x', true], ['*', '', false], ['*', undefined, false],
    ['/api*', '/api/v1', true], ['/api*', '/ap', false],
    ['*.html', '/index.html', true], ['*.html', '/index.htm', false],
    ['/exact', '/exact', true], ['/exact', '/exact/', false],
    ['Reviews.Default*', 'reviews.default.svc', true, true], ['GET', 'get', false],
  ];
  for (const [p, v, want, ic] of cases) t.equal(istioValueMatch(p, v, ic), want, `${p} vs ${v}${ic ? ' (ignore case)' : ''}`);
});

t.test('rule fields', async (t) => {
  const cases: Array<[string, L7Rule, Partial<HttpRequestFacts>, boolean]> = [
    ['empty rule matches all', {}, {}, true],
    ['principal exact', { from: [{ principals: ['cluster.local/ns/default/sa/sleep'] }] }, {}, true],
    ['principal miss', { from: [{ principals: ['cluster.local/ns/default/sa/other'] }] }, {}, false],
    ['principal suffix wildcard', { from: [{ principals: ['*/sa/sleep'] }] }, {}, true],
    ['principal * needs an identity', { from: [{ principals: ['*'] }] }, { srcPrincipal: undefined }, false],
    ['notPrincipals vetoes', { from: [{ notPrincipals: ['cluster.local/ns/default/sa/sleep'] }] }, {}, false],
    ['notPrincipals without identity holds', { from: [{ notPrincipals: ['*'] }] }, { srcPrincipal: undefined }, true],
    ['namespaces', { from: [{ namespaces: ['default'] }] }, {}, true],
    ['notNamespaces', { from: [{ notNamespaces: ['default'] }] }, {}, false],
    ['namespace prefix', { from: [{ namespaces: ['def*'] }] }, {}, true],
    ['ipBlocks cidr', { from: [{ ipBlocks: ['10.244.0.0/16'] }] }, {}, true],
    ['ipBlocks single ip', { from: [{ ipBlocks: ['10.244.0.5'] }] }, {}, true],
    ['notIpBlocks', { from: [{ notIpBlocks: ['10.244.0.0/24'] }] }, {}, false],
    ['any source of the list (OR)', { from: [{ namespaces: ['x'] }, { ipBlocks: ['10.244.0.5/32'] }] }, {}, true],
    ['all fields of a source (AND)', { from: [{ namespaces: ['default'], ipBlocks: ['10.1.0.0/16'] }] }, {}, false],
    ['hosts exact is case-insensitive', { to: [{ hosts: ['PRODUCTPAGE.default.svc.cluster.local:9080'] }] }, {}, true],
    ['hosts exact does not ignore the port', { to: [{ hosts: ['productpage.default.svc.cluster.local'] }] }, {}, false],
    ['hosts prefix', { to: [{ hosts: ['productpage*'] }] }, {}, true],
    ['hosts suffix', { to: [{ hosts: ['*:9080'] }] }, {}, true],
    ['notHosts', { to: [{ notHosts: ['productpage*'] }] }, {}, false],
    ['methods', { to: [{ methods: ['GET', 'HEAD'] }] }, {}, true],
    ['methods case-sensitive', { to: [{ methods: ['get'] }] }, {}, false],
    ['notMethods', { to: [{ notMethods: ['GET'] }] }, {}, false],
    ['notMethods other method', { to: [{ notMethods: ['GET'] }] }, { method: 'POST' }, true],
    ['paths exact', { to: [{ paths: ['/productpage'] }] }, {}, true],
    ['paths prefix', { to: [{ paths: ['/api/*'] }] }, { path: '/api/v1/x' }, true],
    ['paths suffix', { to: [{ paths: ['*/health'] }] }, { path: '/x/health' }, true],
    ['notPaths', { to: [{ notPaths: ['/admin*'] }] }, { path: '/admin/users' }, false],
    ['ports', { to: [{ ports: ['9080'] }] }, {}, true],
    ['notPorts', { to: [{ notPorts: ['9080'] }] }, {}, false],
    ['operation fields AND', { to: [{ methods: ['GET'], paths: ['/other'] }] }, {}, false],
    ['from AND to', { from: [{ namespaces: ['default'] }], to: [{ methods: ['POST'] }] }, {}, false],
    ['when header value', { when: [{ key: 'request.headers[x-token]', values: ['admin'] }] }, {}, true],
    ['when header name case-insensitive', { when: [{ key: 'request.headers[X-Token]', values: ['admin'] }] }, {}, true],
    ['when header absent', { when: [{ key: 'request.headers[x-missing]', values: ['*'] }] }, {}, false],
    ['when header prefix', { when: [{ key: 'request.headers[user-agent]', values: ['curl/*'] }] }, {}, true],
    ['when header notValues', { when: [{ key: 'request.headers[x-token]', notValues: ['admin'] }] }, {}, false],
    ['when source.ip cidr', { when: [{ key: 'source.ip', values: ['10.244.0.0/24'] }] }, {}, true],
    ['when source.namespace', { when: [{ key: 'source.namespace', values: ['other'] }] }, {}, false],
    ['when source.principal', { when: [{ key: 'source.principal', values: ['cluster.local/ns/default/sa/sleep'] }] }, {}, true],
    ['when destination.port', { when: [{ key: 'destination.port', values: ['9080'] }] }, {}, true],
    ['when destination.ip', { when: [{ key: 'destination.ip', notValues: ['10.96.0.20'] }] }, {}, false],
    ['when every condition (AND)', { when: [{ key: 'source.namespace', values: ['default'] }, { key: 'request.headers[x-token]', values: ['guest'] }] }, {}, false],
    ['when unknown key never matches', { when: [{ key: 'request.auth.claims[iss]', values: ['*'] }] }, {}, false],
  ];
  for (const [name, r, f, want] of cases) t.equal(ruleMatch(r, facts(f)), want, name);
});

t.test('decision order', async (t) => {
  const denyPost = pol('DENY', [{ to: [{ methods: ['POST'] }] }], 'deny-post');
  const allowGet = pol('ALLOW', [{ to: [{ methods: ['GET'] }] }], 'allow-get');
  const allowSleep = pol('ALLOW', [{ from: [{ principals: ['cluster.local/ns/default/sa/sleep'] }] }], 'allow-sleep');
  const cases: Array<[string, L7AuthorizationPolicy[], Partial<HttpRequestFacts>, boolean, string | undefined]> = [
    ['no policies: allow', [], {}, true, undefined],
    ['DENY not matching, no ALLOW: allow', [denyPost], {}, true, undefined],
    ['DENY matching: deny', [denyPost], { method: 'POST' }, false, 'AuthorizationPolicy default/deny-post'],
    ['DENY wins over a matching ALLOW', [allowSleep, denyPost], { method: 'POST' }, false, 'AuthorizationPolicy default/deny-post'],
    ['ALLOW matching: allow', [allowGet], {}, true, 'AuthorizationPolicy default/allow-get'],
    ['ALLOW not matching: deny', [allowGet], { method: 'DELETE' }, false, undefined],
    ['any ALLOW suffices', [allowGet, allowSleep], { method: 'DELETE' }, true, 'AuthorizationPolicy default/allow-sleep'],
    ['ALLOW with no rules allows nothing', [pol('ALLOW', [], 'allow-nothing')], {}, false, undefined],
    ['ALLOW with an empty rule allows all', [pol('ALLOW', [{}], 'allow-all')], {}, true, 'AuthorizationPolicy default/allow-all'],
    ['DENY with no rules denies nothing', [pol('DENY', [], 'deny-nothing')], {}, true, undefined],
    ['DENY with an empty rule denies all', [pol('DENY', [{}], 'deny-all')], {}, false, 'AuthorizationPolicy default/deny-all'],
  ];
  for (const [name, ps, f, allowed, policy] of cases) {
    const d = authorizeRequest(ps, facts(f));
    t.equal(d.allowed, allowed, name);
    t.equal(d.policy, policy, `${name}: deciding policy`);
  }
  t.match(authorizeRequest([allowGet], facts({ method: 'PUT' })).reason, /no ALLOW policy matched \(AuthorizationPolicy default\/allow-get\)/);
});
