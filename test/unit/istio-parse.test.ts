// Reading the objects: documents and Lists, line offsets, and each kind's conversions beyond the samples.
import t from 'tap';
import { parseResources } from '../../src/istio/parse.js';
import { UserError } from '../../src/util/errors.js';

const route = (rules: string, parent = '  - {group: "", kind: Service, name: reviews, port: 9080}'): string =>
  `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: bookinfo}\nspec:\n  parentRefs:\n${parent}\n  rules:\n${rules}`;
const vs = (http: string): string =>
  `apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [httpbin]\n  http:\n${http}`;

t.test('documents, empty documents and kind: List', async (t) => {
  const text = `---
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default, namespace: istio-system}
  spec: {mtls: {mode: STRICT}}
- apiVersion: security.istio.io/v1beta1
  kind: PeerAuthentication
  metadata: {name: legacy, namespace: legacy}
  spec:
    selector: {matchLabels: {app: old}}
    mtls: {mode: PERMISSIVE}
    portLevelMtls:
      "8080": {mode: DISABLE}
      9000: {}
---
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: empty}
`;
  const p = parseResources(text, 'pa.yaml');
  t.same(p.resources.peerAuthentications, [
    { name: 'default', namespace: 'istio-system', mode: 'STRICT', origin: 'PeerAuthentication istio-system/default' },
    { name: 'legacy', namespace: 'legacy', mode: 'PERMISSIVE', selector: { app: 'old' }, ports: { 8080: 'DISABLE', 9000: 'UNSET' }, origin: 'PeerAuthentication legacy/legacy' },
    { name: 'empty', namespace: 'default', mode: 'UNSET', origin: 'PeerAuthentication default/empty' },
  ]);
  t.throws(() => parseResources(text.replace('mode: PERMISSIVE', 'mode: LAX'), 'pa.yaml'),
    { message: 'pa.yaml:14:18: PeerAuthentication legacy/legacy: items[1].spec.mtls.mode: unknown value "LAX" (expected one of: UNSET, DISABLE, PERMISSIVE, STRICT)' });
});

t.test('lineOffset: positions inside a bigger file', async (t) => {
  const err = t.throws(() => parseResources('apiVersion: v9\nkind: Foo\n', 'topo.yaml', { lineOffset: 20 })) as Error;
  t.type(err, UserError);
  t.match(err.message, /^topo\.yaml:22:7: document 1: kind: kind Foo is not supported by the lab/);
});

t.test('YAML syntax errors name the document position', async (t) => {
  t.throws(() => parseResources('a: 1\n---\nb: [1\n', 'x.yaml'), /^x\.yaml:\d+:\d+: document 2: yaml: syntax error/);
});

t.test('HTTPRoute: matches, filters, weights and timeouts', async (t) => {
  const p = parseResources(route(`  - matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{name: X-User, value: jason}, {type: RegularExpression, name: x-v, value: "^v[0-9]$"}]
      queryParams: [{name: debug, value: "1"}]
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Route, value: api}]
        add: [{name: x-extra, value: "1"}]
        remove: [X-Drop]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-served-by, value: lab}]}
    - type: URLRewrite
      urlRewrite: {hostname: internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backendRefs:
    - {name: reviews-v1, port: 9080}
    - {name: reviews-v2, port: 9080, weight: 0}
    timeouts: {request: 2s, backendRequest: 500ms}
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}
  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 0}
    timeouts: {backendRequest: 1m}
`), 'r.yaml');
  const [a, b, c] = p.resources.routes[0].rules;
  t.equal(p.resources.routes[0].host, 'reviews.bookinfo.svc.cluster.local');
  t.same(a.matches, [{
    path: { kind: 'PathPrefix', value: '/api' },
    headers: [{ name: 'x-user', kind: 'Exact', value: 'jason' }, { name: 'x-v', kind: 'RegularExpression', value: '^v[0-9]$' }],
    queryParams: [{ name: 'debug', kind: 'Exact', value: '1' }],
    method: 'GET',
  }]);
  t.same(a.requestHeaders, { set: { 'x-route': 'api' }, add: { 'x-extra': '1' }, remove: ['x-drop'] });
  t.same(a.responseHeaders, { set: { 'x-served-by': 'lab' } });
  t.same(a.rewrite, { hostname: 'internal', prefixPath: '/v2' });
  t.same(a.backends, [{ host: 'reviews-v1.bookinfo.svc.cluster.local', port: 9080, weight: 1 }], 'missing weight = 1, weight 0 dropped');
  t.equal(a.timeoutMs, 2000, 'request wins over backendRequest without retries');
  t.same(b.redirect, { statusCode: 301, scheme: 'https', hostname: 'new.example', path: '/new' });
  t.same(b.backends, []);
  t.notOk(b.directResponse, 'a redirect is not a 500');
  t.same(c.directResponse, { status: 500, body: '' }, 'every weight 0 -> 500');
  t.equal(c.timeoutMs, 60000, 'backendRequest alone -> route timeout (1.20)');
  t.ok(a.retries, 'HTTPRoute rules with backends carry the default retry policy');
  t.equal(b.retries, undefined, 'a redirect has no upstream to retry');
  t.equal(c.retries, undefined, 'nor has a direct response');
  t.same(p.refs.filter((r) => r.type === 'service').map((r) => r.type === 'service' && `${r.what} ${r.host}:${r.port}`), [
    'backendRef reviews-v1.bookinfo.svc.cluster.local:9080',
    'backendRef reviews-v2.bookinfo.svc.cluster.local:9080',
    'backendRef reviews-v1.bookinfo.svc.cluster.local:9080',
    'parentRef reviews.bookinfo.svc.cluster.local:9080',
  ]);
});

t.test('VirtualService: matches, rewrite, redirect, headers, retries, faults', async (t) => {
  const p = parseResources(vs(`  - name: api
    match:
    - uri: {prefix: /api}
      method: {exact: POST}
      queryParams: {v: {regex: "^[0-9]+$"}}
      withoutHeaders: {x-skip: {exact: "1"}}
      headers: {X-User: {prefix: ja}}
    rewrite: {uri: /, authority: backend}
    headers:
      request: {set: {x-a: "1"}, remove: [x-b]}
      response: {add: {x-c: "2"}}
    retries: {attempts: 0}
    fault:
      abort: {httpStatus: 503}
    route:
    - destination: {host: httpbin.default.svc.cluster.local, port: {number: 8000}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.com, redirectCode: 308}
  - directResponse: {status: 404, body: {string: nothing here}}
  - route:
    - destination: {host: httpbin}
    retries: {attempts: 5}
`), 'vs.yaml');
  const [a, b, c, d] = p.resources.routes[0].rules;
  t.same(a.matches, [{
    path: { kind: 'Prefix', value: '/api' }, method: 'POST',
    queryParams: [{ name: 'v', kind: 'RegularExpression', value: '^[0-9]+$' }],
    headers: [{ name: 'x-skip', kind: 'Exact', value: '1', invert: true }, { name: 'x-user', kind: 'Prefix', value: 'ja' }],
  }]);
  t.same(a.rewrite, { prefixPath: '/', hostname: 'backend' });
  t.same(a.requestHeaders, { set: { 'x-a': '1' }, remove: ['x-b'] });
  t.same(a.responseHeaders, { add: { 'x-c': '2' } });
  t.equal(a.retries, undefined, 'attempts: 0 = no retry policy');
  t.same(a.fault, { abort: { httpStatus: 503, percentage: 0 } }, 'no percentage = no request aborted');
  t.match(p.warnings[0], /^vs\.yaml:20:14: VirtualService default\/v: spec\.http\[0\]\.fault\.abort: no percentage: Istio aborts no request/);
  t.same(a.backends, [{ host: 'httpbin.default.svc.cluster.local', port: 8000, weight: 100 }]);
  t.same(b.redirect, { statusCode: 308, path: '/new', hostname: 'example.com' });
  t.same(c.directResponse, { status: 404, body: 'nothing here' });
  t.equal(b.retries, undefined, 'no default retries without an upstream');
  t.equal(c.retries, undefined);
  t.same(d.retries, { attempts: 5, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'], retriableStatusCodes: [503] },
    'attempts alone keep the default conditions');
});

t.test('DestinationRule: LEAST_CONN is LEAST_REQUEST; subset load balancers', async (t) => {
  const p = parseResources(`apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: d, namespace: ns1}
spec:
  host: reviews.ns2.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`, 'dr.yaml');
  t.same(p.resources.destinationPolicies, [{
    host: 'reviews.ns2.svc.cluster.local', origin: 'DestinationRule ns1/d', loadBalancer: 'LEAST_REQUEST',
    subsets: [{ name: 'v1', labels: { version: 'v1' }, loadBalancer: 'ROUND_ROBIN' }],
  }]);
});

t.test('status and server-filled metadata are ignored', async (t) => {
  const p = parseResources(`apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: d
  uid: 1234
  resourceVersion: "99"
  creationTimestamp: "2023-01-01T00:00:00Z"
  labels: {team: a}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  host: reviews
status: {observedGeneration: 1}
`, 'dr.yaml');
  t.equal(p.resources.destinationPolicies.length, 1);
});

t.test('a topology\'s resources: block, cut out with its indentation, as a plain list', async (t) => {
  const topology = `name: demo
nodes: [{name: node-a}]
resources:
  - apiVersion: networking.istio.io/v1beta1
    kind: DestinationRule
    metadata: {name: httpbin}
    spec: {host: httpbin}
  - apiVersion: networking.istio.io/v1beta1
    kind: DestinationRule
    metadata: {name: bad}
    spec: {host: httpbin, trafficPolicy: {tls: {mode: DISABLE}}}
`;
  const lines = topology.split('\n');
  const start = lines.findIndex((l) => l.startsWith('resources:')) + 1;
  const block = lines.slice(start).join('\n');
  t.throws(() => parseResources(block, 'demo.yaml', { lineOffset: start }), {
    message: 'demo.yaml:11:43: DestinationRule default/bad: resources[1].spec.trafficPolicy.tls: not supported by the lab: the lab models only loadBalancer.simple (supported here: loadBalancer)',
  });
  const ok = parseResources(lines.slice(start, start + 4).join('\n'), 'demo.yaml', { lineOffset: start });
  t.same(ok.resources.destinationPolicies.map((d) => d.host), ['httpbin.default.svc.cluster.local']);
});
