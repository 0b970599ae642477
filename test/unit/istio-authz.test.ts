// AuthorizationPolicy: who gets it (waypoint, sidecars, ztunnel) and istiod's conversion for
// ztunnel of L7 policies without a waypoint, checked through the lab's own ztunnel RBAC.
import t from 'tap';
import { parseResources } from '../../src/istio/parse.js';
import { convertPolicy } from '../../src/mesh/authz-convert.js';
import { authorize } from '../../src/mesh/authz.js';
import type { RbacConnection } from '../../src/mesh/authz.js';
import type { SpiffeId } from '../../src/mesh/identity.js';

const spiffeId = (namespace: string, serviceAccount: string): SpiffeId => ({ trustDomain: 'cluster.local', namespace, serviceAccount });

const policy = (spec: string, name = 'p'): string =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n${spec}`;

const sleepConn = (dstPort = 80): RbacConnection => ({
  srcIdentity: spiffeId('default', 'sleep'), srcIp: '10.244.0.3', dstIp: '10.244.1.3', dstPort,
});

t.test('an L4 policy goes to ztunnel unchanged', async (t) => {
  const p = parseResources(policy(`  selector:
    matchLabels: {app: productpage}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/sleep]
        notIpBlocks: [10.0.0.0/8]
    to:
    - operation:
        ports: ["9080"]
`), 'a.yaml');
  t.same(p.resources.l7Policies, []);
  t.same(p.warnings, []);
  t.same(p.l4Policies, [{
    name: 'p', namespace: 'default', action: 'ALLOW', selector: { app: 'productpage' },
    rules: [{ to: [{ operation: { ports: ['9080'] } }], from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'], notIpBlocks: ['10.0.0.0/8'] } }] }],
  }]);
});

t.test('no spec: ALLOW nothing, for the whole namespace', async (t) => {
  const p = parseResources('apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: istio-system}\n', 'a.yaml');
  t.same(p.l4Policies, [{ name: 'allow-nothing', namespace: 'istio-system', action: 'ALLOW', rules: [] }]);
});

t.test('L4 when conditions become extra entries ANDed like istiod\'s groups', async (t) => {
  const p = parseResources(policy(`  action: DENY
  rules:
  - from:
    - source: {namespaces: [foo]}
    when:
    - key: source.ip
      values: [10.244.0.3]
    - key: destination.port
      notValues: ["8080"]
`), 'a.yaml');
  t.same(p.l4Policies[0].rules, [{
    to: [{ operation: { notPorts: ['8080'] } }],
    from: [{ source: { namespaces: ['foo'] } }, { source: { ipBlocks: ['10.244.0.3'] } }],
  }]);
  const sp = parseResources(policy(`  action: DENY
  rules:
  - when:
    - key: source.principal
      values: [cluster.local/ns/default/sa/sleep]
`), 'a.yaml');
  const z = convertPolicy(sp.l4Policies[0]);
  t.equal(authorize(sleepConn(), [z]).allowed, false, 'the DENY matches sleep');
  t.equal(authorize({ ...sleepConn(), srcIdentity: spiffeId('default', 'other') }, [z]).allowed, true, 'and nobody else');
});

t.test('an ALLOW with L7 fields and no waypoint: sidecar policy + ztunnel drops the rule (reset) + warning', async (t) => {
  const p = parseResources(policy(`  selector:
    matchLabels: {app: productpage}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/sleep]
    to:
    - operation:
        methods: ["GET"]
`, 'productpage-viewer'), 'a.yaml');
  t.equal(p.resources.l7Policies.length, 1);
  t.same(p.resources.l7Policies[0].target, { selector: { app: 'productpage' } });
  t.same(p.l4Policies, [{ name: 'productpage-viewer', namespace: 'default', action: 'ALLOW', selector: { app: 'productpage' }, rules: [] }]);
  t.equal(p.warnings.length, 1);
  t.match(p.warnings[0], /^a\.yaml:16:18: AuthorizationPolicy default\/productpage-viewer: spec\.rules\[0\]\.to\[0\]\.operation\.methods: L7 fields .* no waypoint enforces this policy: .*connections that only such a rule would allow are reset/);
  // What the user sees: sleep, which the policy meant to allow, is refused by ztunnel.
  t.equal(authorize(sleepConn(), [convertPolicy(p.l4Policies[0])]).allowed, false);
});

t.test('a DENY with L7 fields and no waypoint keeps only its L4 part', async (t) => {
  const p = parseResources(policy(`  action: DENY
  rules:
  - from:
    - source: {namespaces: [default]}
    to:
    - operation: {methods: [DELETE], ports: ["80"]}
    - operation: {paths: [/admin]}
  - when:
    - key: request.headers[X-Token]
      values: [bad]
`), 'a.yaml');
  t.same(p.resources.l7Policies[0].target, { namespace: true });
  t.same(p.resources.l7Policies[0].rules[1].when, [{ key: 'request.headers[x-token]', values: ['bad'] }]);
  t.same(p.l4Policies[0].rules, [
    { to: [{ operation: { ports: ['80'] } }, { operation: {} }], from: [{ source: { namespaces: ['default'] } }] },
    { from: [{ source: {} }] },
  ]);
  t.match(p.warnings[0], /each DENY rule keeps only its L4 part/);
  // ztunnel 1.18 ANDs the entries of a group and an empty one matches nothing: nothing is denied.
  t.equal(authorize(sleepConn(80), [convertPolicy(p.l4Policies[0])]).allowed, true);
});

t.test('targetRefs to two waypoints: one L7 policy each', async (t) => {
  const p = parseResources(policy(`  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: wp-a}
  - {kind: Gateway, group: gateway.networking.k8s.io, name: wp-b}
  action: DENY
  rules:
  - to: [{operation: {paths: [/admin*]}}]
`), 'a.yaml');
  t.same(p.resources.l7Policies.map((x) => x.target), [{ waypoint: 'wp-a' }, { waypoint: 'wp-b' }]);
  t.same(p.l4Policies, []);
  t.same(p.refs.filter((r) => r.type === 'gateway').map((r) => r.type === 'gateway' && r.name), ['wp-a', 'wp-b']);
});
