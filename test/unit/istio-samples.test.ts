// Istio's own sample YAML, pasted as users paste it, must give the model the docs describe.
import t from 'tap';
import { parseResources } from '../../src/istio/parse.js';
import { DEFAULT_RETRY_POLICY } from '../../src/l7/model.js';

// samples/bookinfo/networking/virtual-service-reviews-90-10.yaml + destination-rule-reviews.yaml
const reviews9010 = `apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 90
    - destination:
        host: reviews
        subset: v2
      weight: 10
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: RANDOM
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
`;

// samples/bookinfo/gateway-api/route-reviews-90-10.yaml (1.20 form, group: "")
const httpRoute9010 = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
  - backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 90
    - name: reviews-v2
      port: 9080
      weight: 10
`;

// istioctl x waypoint apply --service-account bookinfo-reviews (1.18-1.20)
const waypoint = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
  annotations:
    istio.io/for-service-account: bookinfo-reviews
  name: bookinfo-reviews
  namespace: default
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - allowedRoutes:
      namespaces:
        from: Same
    name: mesh
    port: 15008
    protocol: HBONE
`;

// Ambient getting started, "L7 authorization policy" (productpage-viewer bound to the waypoint)
const productpageViewer = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      istio.io/gateway-name: bookinfo-productpage
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/default/sa/sleep
        - cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account
    to:
    - operation:
        methods: ["GET"]
`;

const defaultRetry = { attempts: 2, retryOn: [...DEFAULT_RETRY_POLICY.retryOn], retriableStatusCodes: [503] };

t.test('bookinfo VirtualService reviews 90/10 + DestinationRule reviews', async (t) => {
  const p = parseResources(reviews9010, 'bookinfo.yaml');
  t.same(p.warnings, []);
  t.same(p.l4Policies, []);
  t.same(p.resources.routes, [{
    host: 'reviews.default.svc.cluster.local',
    origin: 'VirtualService default/reviews',
    rules: [{
      origin: 'VirtualService default/reviews http[0]',
      matches: [],
      backends: [
        { host: 'reviews.default.svc.cluster.local', subset: 'v1', weight: 90 },
        { host: 'reviews.default.svc.cluster.local', subset: 'v2', weight: 10 },
      ],
      retries: defaultRetry,
    }],
  }]);
  t.same(p.resources.destinationPolicies, [{
    host: 'reviews.default.svc.cluster.local', origin: 'DestinationRule default/reviews', loadBalancer: 'RANDOM',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }, { name: 'v3', labels: { version: 'v3' } },
    ],
  }]);
  t.same(p.refs.filter((r) => r.type === 'subset').map((r) => r.type === 'subset' && r.subset), ['v1', 'v2']);
});

t.test('bookinfo HTTPRoute reviews 90/10 (Gateway API)', async (t) => {
  const p = parseResources(httpRoute9010, 'route.yaml');
  t.same(p.resources.routes, [{
    host: 'reviews.default.svc.cluster.local', port: 9080, origin: 'HTTPRoute default/reviews',
    rules: [{
      origin: 'HTTPRoute default/reviews rules[0]',
      matches: [],
      backends: [
        { host: 'reviews-v1.default.svc.cluster.local', port: 9080, weight: 90 },
        { host: 'reviews-v2.default.svc.cluster.local', port: 9080, weight: 10 },
      ],
      retries: defaultRetry,
    }],
  }]);
  // 1.18's sample has no group on the Service parentRef; istiod accepted it.
  const p18 = parseResources(httpRoute9010.replace('  - group: ""\n    kind', '  - kind'), 'route.yaml');
  t.same(p18.resources.routes, p.resources.routes);
});

t.test('waypoint Gateway as istioctl writes it, with and without a service account', async (t) => {
  const p = parseResources(waypoint.replace(/  - allowedRoutes:\n      namespaces:\n        from: Same\n    name/, '  - name'), 'wp.yaml');
  t.same(p.resources.waypoints, [{ gateway: 'bookinfo-reviews', namespace: 'default', forServiceAccount: 'bookinfo-reviews', origin: 'Gateway default/bookinfo-reviews' }]);
  const ns = parseResources(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: namespace
  namespace: bookinfo
  annotations: {ambient-lab.io/node: node-b}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
`, 'wp.yaml');
  t.same(ns.resources.waypoints, [{ gateway: 'namespace', namespace: 'bookinfo', node: 'node-b', origin: 'Gateway bookinfo/namespace' }]);
  // `kubectl get -o yaml` shows the defaulted allowedRoutes: accepted; any other value is refused.
  t.same(parseResources(waypoint, 'wp.yaml').resources.waypoints, p.resources.waypoints);
  t.throws(() => parseResources(waypoint.replace('from: Same', 'from: All'), 'wp.yaml'),
    { message: 'wp.yaml:13:15: Gateway default/bookinfo-reviews: spec.listeners[0].allowedRoutes.namespaces.from: expected "Same" (the default); routes attach to Services, not to the waypoint, got "All"' });
});

t.test('productpage-viewer: an L7 policy bound to the waypoint', async (t) => {
  const p = parseResources(productpageViewer, 'authz.yaml');
  t.same(p.l4Policies, [], 'ztunnel gets nothing of a waypoint policy');
  t.same(p.warnings, []);
  t.same(p.resources.l7Policies, [{
    name: 'productpage-viewer', namespace: 'default', origin: 'AuthorizationPolicy default/productpage-viewer', action: 'ALLOW',
    target: { waypoint: 'bookinfo-productpage' },
    rules: [{
      from: [{ principals: ['cluster.local/ns/default/sa/sleep', 'cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account'] }],
      to: [{ methods: ['GET'] }],
    }],
  }]);
  const byRef = parseResources(productpageViewer.replace(
    '  selector:\n    matchLabels:\n      istio.io/gateway-name: bookinfo-productpage\n',
    '  targetRef:\n    kind: Gateway\n    group: gateway.networking.k8s.io\n    name: bookinfo-productpage\n'), 'authz.yaml');
  t.same(byRef.resources.l7Policies, p.resources.l7Policies, 'targetRef binds the same way');
});

t.test('bookinfo fault injection and header match (virtual-service-ratings-test-delay/abort)', async (t) => {
  const p = parseResources(`apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
      abort:
        percentage:
          value: 50
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
    retries:
      attempts: 3
      perTryTimeout: 0.5s
      retryOn: gateway-error,connect-failure,503,504
    timeout: 10s
`, 'ratings.yaml');
  const [r0, r1] = p.resources.routes[0].rules;
  t.same(r0.matches, [{ headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }]);
  t.same(r0.fault, { delay: { fixedDelayMs: 7000, percentage: 100 }, abort: { httpStatus: 500, percentage: 50 } });
  t.same(r0.backends, [{ host: 'ratings.default.svc.cluster.local', subset: 'v1', weight: 100 }]);
  t.same(r1.retries, { attempts: 3, perTryTimeoutMs: 500, retryOn: ['gateway-error', 'connect-failure', 'retriable-status-codes'], retriableStatusCodes: [503, 504] });
  t.equal(r1.timeoutMs, 10000);
});
