// Cross-checks against the topology: what the objects name must exist.
import t from 'tap';
import { parseResources, mergeParsed } from '../../src/istio/parse.js';
import { validateResources } from '../../src/istio/validate.js';
import type { TopologyFacts } from '../../src/istio/validate.js';

const facts: TopologyFacts = {
  services: [
    { name: 'reviews', namespace: 'default', ports: [{ port: 9080 }] },
    { name: 'reviews-v1', namespace: 'default', ports: [{ port: 9080 }] },
  ],
  nodes: [{ name: 'node-a' }, { name: 'node-b' }],
  pods: [{ namespace: 'default', serviceAccount: 'bookinfo-reviews', labels: { app: 'reviews', version: 'v1' } }],
};

const wp = (name: string, extra = ''): string => `apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
  name: ${name}
  annotations: {istio.io/for-service-account: bookinfo-reviews${extra}}
spec: {gatewayClassName: istio-waypoint}
`;
const dr = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
`;
const vs = (subset: string, host = 'reviews'): string => `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [${host}]
  http: [{route: [{destination: {host: reviews, subset: ${subset}}}]}]
`;
const route = (parent: string, backend: string, port = 9080): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{kind: Service, group: "", name: ${parent}, port: ${port}}]
  rules: [{backendRefs: [{name: ${backend}, port: 9080}]}]
`;

const check = (text: string): { warnings: string[] } => validateResources(parseResources(text, 'res.yaml'), facts);

t.test('a consistent set passes', async (t) => {
  const r = check(`${wp('bookinfo-reviews', ', ambient-lab.io/node: node-b')}---\n${dr}---\n${vs('v1')}---\n${route('reviews', 'reviews-v1')}`);
  t.same(r.warnings.length, 1, 'VS and HTTPRoute for the same Service: the first wins');
  t.match(r.warnings[0], /^res\.yaml:24:16: HTTPRoute default\/r: spec\.parentRefs\[0\]: reviews\.default\.svc\.cluster\.local already has routes from res\.yaml:17:11;/);
});

t.test('broken references are errors at the object that makes them', async (t) => {
  t.throws(() => check(route('ratings', 'reviews-v1')), {
    message: 'res.yaml:5:16: HTTPRoute default/r: spec.parentRefs[0]: parentRef ratings.default.svc.cluster.local: no such Service in the topology ' +
      '(Services: reviews.default.svc.cluster.local, reviews-v1.default.svc.cluster.local)',
  });
  t.throws(() => check(route('reviews', 'reviews-v2')), /^res\.yaml:6:26: HTTPRoute default\/r: spec\.rules\[0\]\.backendRefs\[0\]: backendRef reviews-v2\.default\.svc\.cluster\.local: no such Service/);
  t.throws(() => check(route('reviews', 'reviews-v1', 9081)), /parentRef default\/reviews has no port 9081 \(ports: 9080\)/);
  t.throws(() => check(`${dr}---\n${vs('v2')}`), {
    message: 'res.yaml:11:57: VirtualService default/reviews: spec.http[0].route[0].destination.subset: subset "v2" of reviews.default.svc.cluster.local ' +
      'is not defined by any DestinationRule (Istio answers 503 "no healthy upstream")',
  });
  t.throws(() => check(vs('v1')), /subset "v1" of reviews\.default\.svc\.cluster\.local is not defined by any DestinationRule/);
  t.throws(() => check(wp('bookinfo-reviews', ', ambient-lab.io/node: node-c')), /^res\.yaml:5:86: Gateway default\/bookinfo-reviews: metadata\.annotations\["ambient-lab\.io\/node"\]: unknown node "node-c" \(nodes: node-a, node-b\)/);
});

t.test('duplicates: the same object twice, two waypoints for one service account', async (t) => {
  t.throws(() => check(`${dr}---\n${dr}`), { message: 'res.yaml:6:1: DestinationRule default/reviews: metadata.name: a second DestinationRule default/reviews (the first is at res.yaml:1:1): each object must be defined once' });
  t.throws(() => check(`${wp('a')}---\n${wp('a')}`), /a second Gateway default\/a/);
  t.throws(() => check(`${wp('a')}---\n${wp('b')}`), /^res\.yaml:8:1: Gateway default\/b: metadata\.name: a second waypoint for service account bookinfo-reviews in namespace default \(also Gateway a\)/);
  // Across sources (topology resources + lab apply) too.
  t.throws(() => validateResources(mergeParsed(parseResources(dr, 'topo.yaml'), parseResources(dr, 'apply.yaml')), facts), /^apply\.yaml:1:1: .*the first is at topo\.yaml:1:1/);
});

t.test('a policy bound to a waypoint that does not exist', async (t) => {
  t.throws(() => check(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p}
spec:
  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: nope}
`), { message: 'res.yaml:5:14: AuthorizationPolicy default/p: spec.targetRef: no waypoint Gateway "nope" in namespace default (the policy would bind to nothing)' });
});

t.test('a waypoint for a service account no pod uses: warning', async (t) => {
  const r = check(wp('w').replace('bookinfo-reviews', 'nobody'));
  t.match(r.warnings[0], /no pod in namespace default runs as service account nobody: this waypoint serves nothing/);
});

t.test('routes for a Service no waypoint serves: warning (ztunnel ignores them)', async (t) => {
  const withSelectors: TopologyFacts = {
    ...facts,
    services: facts.services.map((s) => ({ ...s, selector: (s.name === 'reviews' ? { app: 'reviews' } : { app: 'reviews', version: 'v1' }) as Record<string, string> })),
  };
  const text = `${dr}---\n${vs('v1')}`;
  const none = validateResources(parseResources(text, 'res.yaml'), withSelectors);
  t.equal(none.warnings.length, 1);
  t.match(none.warnings[0], /^res\.yaml:10:11: VirtualService default\/reviews: spec\.hosts\[0\]: no waypoint serves the pods of Service default\/reviews: in ambient only a waypoint applies routes/);
  const served = validateResources(parseResources(`${wp('bookinfo-reviews')}---\n${text}`, 'res.yaml'), withSelectors);
  t.same(served.warnings, []);
});
