// L4 authorization, table-driven: the decision order, the match semantics (any value, not_
// vetoes, all groups, empty entry) and istiod's conversion from AuthorizationPolicy.
import t from 'tap';
import { authorize, policyMatches, type Authorization, type RbacConnection, type RbacMatch } from '../../src/mesh/authz.js';
import { convertPolicy, istioStringMatch } from '../../src/mesh/authz-convert.js';
import { WorkloadStore, type Workload } from '../../src/mesh/workloads.js';

const sleep = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' };
const other = { trustDomain: 'cluster.local', namespace: 'other', serviceAccount: 'client' };
const conn = (c: Partial<RbacConnection> = {}): RbacConnection => ({ srcIdentity: sleep, srcIp: '10.244.0.5', dstIp: '10.244.1.7', dstPort: 8080, ...c });
const pol = (action: 'Allow' | 'Deny', groups: RbacMatch[][][], name = `${action.toLowerCase()}-x`): Authorization =>
  ({ name, namespace: 'default', scope: 'Namespace', action, groups });

// The example policy of ztunnel 1.18's examples/localhost.yaml.
const deny9999 = pol('Allow', [[[{ not_destination_ports: [9999] }]]], 'deny-9999');

t.test('decision order', async (t) => {
  const cases: Array<[string, RbacConnection, Authorization[] | undefined, boolean, RegExp]> = [
    ['unknown destination', conn(), undefined, false, /unknown destination/],
    ['no policies', conn(), [], true, /no ALLOW/],
    ['deny-9999 allows 8080', conn(), [deny9999], true, /allowed by default\/deny-9999/],
    ['deny-9999 denies 9999', conn({ dstPort: 9999 }), [deny9999], false, /no ALLOW policy matched \(default\/deny-9999\)/],
    ['DENY match wins over ALLOW match', conn(), [pol('Allow', [[]]), pol('Deny', [[[{ destination_ports: [8080] }]]])], false, /DENY policy default\/deny-x/],
    ['DENY not matching, no ALLOW -> allow', conn({ dstPort: 80 }), [pol('Deny', [[[{ destination_ports: [8080] }]]])], true, /no ALLOW/],
    ['ALLOW with no rules allows nothing', conn(), [pol('Allow', [])], false, /no ALLOW policy matched/],
    ['ALLOW with an empty rule allows all', conn(), [pol('Allow', [[]])], true, /allowed/],
    ['DENY with no rules never matches', conn(), [pol('Deny', [])], true, /no ALLOW/],
  ];
  for (const [name, c, ps, allowed, reason] of cases) {
    const d = authorize(c, ps);
    t.equal(d.allowed, allowed, name);
    t.match(d.reason, reason, `${name}: reason`);
  }
});

t.test('match semantics', async (t) => {
  const m = (x: RbacMatch, c = conn()): boolean => policyMatches(pol('Allow', [[[x]]]), c);
  const cases: Array<[string, RbacMatch, RbacConnection, boolean]> = [
    ['empty entry matches nothing', {}, conn(), false],
    ['empty lists are an empty entry', { namespaces: [], destination_ports: [] }, conn(), false],
    ['namespace exact', { namespaces: [{ Exact: 'default' }] }, conn(), true],
    ['namespace any of', { namespaces: [{ Exact: 'x' }, { Exact: 'default' }] }, conn(), true],
    ['namespace miss', { namespaces: [{ Exact: 'x' }] }, conn(), false],
    ['not_namespaces vetoes', { not_namespaces: [{ Exact: 'default' }] }, conn(), false],
    ['not_namespaces other', { not_namespaces: [{ Exact: 'x' }] }, conn(), true],
    ['principal without spiffe://', { principals: [{ Exact: 'cluster.local/ns/default/sa/sleep' }] }, conn(), true],
    ['principal with spiffe:// does not match', { principals: [{ Exact: 'spiffe://cluster.local/ns/default/sa/sleep' }] }, conn(), false],
    ['principal prefix', { principals: [{ Prefix: 'cluster.local/ns/default/' }] }, conn(), true],
    ['principal suffix', { principals: [{ Suffix: '/sa/sleep' }] }, conn({ srcIdentity: other }), false],
    ['presence with identity', { principals: ['Presence'] }, conn(), true],
    ['presence without identity (plaintext)', { principals: ['Presence'] }, conn({ srcIdentity: undefined }), false],
    ['namespace without identity', { namespaces: [{ Exact: 'default' }] }, conn({ srcIdentity: undefined }), false],
    ['not_principals without identity', { not_principals: [{ Exact: 'x' }] }, conn({ srcIdentity: undefined }), true],
    ['source cidr', { source_ips: ['10.244.0.0/24'] }, conn(), true],
    ['source cidr miss', { source_ips: ['10.244.1.0/24'] }, conn(), false],
    ['not source ip /32', { not_source_ips: ['10.244.0.5/32'] }, conn(), false],
    ['destination ip', { destination_ips: ['10.244.1.7/32'] }, conn(), true],
    ['destination port + not port', { destination_ports: [8080, 9090], not_destination_ports: [8080] }, conn(), false],
    ['all fields must match', { namespaces: [{ Exact: 'default' }], destination_ports: [80] }, conn(), false],
  ];
  for (const [name, x, c, want] of cases) t.equal(m(x, c), want, name);

  // Groups: all must match; entries within a group: all must match (1.18); rules: any.
  const ns = { namespaces: [{ Exact: 'default' }] };
  const port80 = { destination_ports: [80] };
  const port8080 = { destination_ports: [8080] };
  t.equal(policyMatches(pol('Allow', [[[ns], [port8080]]]), conn()), true, 'two groups both matching');
  t.equal(policyMatches(pol('Allow', [[[ns], [port80]]]), conn()), false, 'one group failing fails the rule');
  t.equal(policyMatches(pol('Allow', [[[port8080, port80]]]), conn()), false, '1.18: entries within a group are ANDed');
  t.equal(policyMatches(pol('Allow', [[[port80]], [[port8080]]]), conn()), true, 'any rule');
});

t.test('istiod conversion and the applied set', async (t) => {
  t.same(istioStringMatch('*'), 'Presence');
  t.same(istioStringMatch('cluster.local/ns/a/*'), { Prefix: 'cluster.local/ns/a/' });
  t.same(istioStringMatch('*/sa/sleep'), { Suffix: '/sa/sleep' });
  t.same(istioStringMatch('x'), { Exact: 'x' });

  const allowSleep = convertPolicy({
    name: 'allow-sleep', namespace: 'default', action: 'ALLOW', selector: { app: 'httpbin' },
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }], to: [{ operation: { ports: ['8080'] } }] }],
  });
  t.equal(allowSleep.scope, 'WorkloadSelector');
  t.equal(allowSleep.action, 'Allow');
  t.equal(allowSleep.groups[0].length, 2, 'one group for to, one for from');
  const denyNs = convertPolicy({ name: 'deny-other', namespace: 'default', action: 'DENY', rules: [{ from: [{ source: { namespaces: ['other'] } }] }] });
  t.equal(denyNs.scope, 'Namespace');
  const global = convertPolicy({ name: 'g', namespace: 'istio-system', action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['10.244.0.5'] } }] }] });
  t.equal(global.scope, 'Global');
  t.same(global.groups[0][0][0].source_ips, ['10.244.0.5/32']);

  const w = (ip: string, ns: string, pols: string[]): Workload => ({
    workloadIp: ip, waypointAddresses: [], gatewayAddress: null, protocol: 'HBONE', name: ip, namespace: ns, trustDomain: 'cluster.local',
    serviceAccount: 'default', workloadName: ip, workloadType: 'pod', canonicalName: ip, canonicalRevision: 'latest', node: 'n',
    nativeHbone: false, authorizationPolicies: pols, status: 'Healthy', clusterId: 'Kubernetes',
  });
  const httpbin = w('10.244.1.7', 'default', ['default/allow-sleep']);
  const otherPod = w('10.244.1.8', 'default', []);
  const foreign = w('10.244.1.9', 'other', []);
  const store = new WorkloadStore({ workloads: [httpbin, otherPod, foreign], services: [], policies: [allowSleep, denyNs, global] });
  t.same(store.policiesFor(httpbin).map((p) => p.name).sort(), ['allow-sleep', 'deny-other', 'g']);
  t.same(store.policiesFor(otherPod).map((p) => p.name).sort(), ['deny-other', 'g'], 'selector policy applies only to selected workloads');
  t.same(store.policiesFor(foreign).map((p) => p.name), ['g'], 'Namespace policy stays in its namespace');

  const decide = (c: RbacConnection) => authorize(c, store.policiesFor(httpbin));
  // ALLOW set = {allow-sleep, g}: sleep on 8080 matches allow-sleep.
  t.equal(decide(conn()).allowed, true, 'sleep -> httpbin:8080 allowed');
  t.equal(decide(conn({ dstPort: 9090, srcIp: '10.244.0.6' })).allowed, false, 'sleep (from outside the Global ipBlock) -> httpbin:9090: no ALLOW matches');
  t.equal(decide(conn({ dstPort: 9090 })).allowed, true, 'the same from 10.244.0.5 matches the Global ipBlock ALLOW');
  t.equal(decide(conn({ srcIdentity: other, srcIp: '10.244.0.5' })).allowed, false, 'other namespace denied by DENY');
  t.equal(decide(conn({ srcIdentity: undefined, srcIp: '10.244.0.5', dstPort: 1 })).allowed, true, 'plaintext from the allowed IP block (Global policy)');
});
