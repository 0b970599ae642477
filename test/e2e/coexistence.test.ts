// topologies/coexistence.yaml as a learner meets it: the sidecar pods' nat rules as
// iptables-save prints them in the pod, and an L7 DENY on the waypoint turning exactly the
// waypoint paths (ambient -> waypoint, sidecar -> waypoint) into 403 while the others stay 200.
import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, sh, upJson } from './helpers.js';
import { istioInitRuleset } from '../../src/sidecar/istio-iptables.js';
import { expectedIptablesSave, normalizeIptablesSave } from '../../src/plan/iptables-render.js';

const NAME = 'coex';
const up = upJson('topologies/coexistence.yaml', NAME);
t.teardown(() => { lab(['down', NAME]); });

const codes = (from: string, urls: string[]): string[] =>
  lab(['exec', '--lab', NAME, from, '--', 'sh', '-c', urls.map((u) => `curl -s -m 5 -o /dev/null -w '%{http_code}\\n' ${u}`).join('; ')]).stdout.trim().split('\n');

t.test('a sidecar pod holds istio-cni\'s nat rules, as iptables-save prints them', async (t) => {
  if (!t.ok(up.ok, up.stderr)) return;
  const want = normalizeIptablesSave(expectedIptablesSave(istioInitRuleset({ variant: 'cni' })));
  for (const pod of ['sleep-sc', 'httpbin-sc', 'httpbin-mtls']) {
    const got = normalizeIptablesSave(sh(`ip netns exec al-${NAME}-pod-default.${pod} iptables-save -t nat`));
    t.equal(got, want, `${pod}: the live nat table is the CNI plugin's rules, rule for rule`);
  }
  t.equal(sh(`ip netns exec al-${NAME}-pod-default.sleep iptables-save -t nat | grep -c ISTIO || true`).trim(), '0', 'an ambient pod has none');
});

t.test('an L7 DENY on the waypoint: the waypoint paths get 403, the others stay 200', async (t) => {
  const urls = ['http://reviews:9080/ip', 'http://httpbin:8000/ip', 'http://httpbin-sc:8000/ip', 'http://web:8000/ip'];
  t.same(codes('sleep', urls), ['200', '200', '200', '200'], 'before: sleep reaches all four');
  t.same(codes('sleep-sc', urls), ['200', '200', '200', '200'], 'before: sleep-sc reaches all four');
  const dir = mkdtempSync(join(tmpdir(), 'coex-'));
  const file = join(dir, 'deny-get.yaml');
  writeFileSync(file, `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-get}
spec:
  selector:
    matchLabels: {istio.io/gateway-name: bookinfo-reviews}
  action: DENY
  rules:
    - to: [{operation: {methods: ["GET"]}}]
`);
  const r = lab(['apply', '--lab', NAME, '-f', file]);
  t.equal(r.code, 0, r.stderr);
  t.same(codes('sleep', urls), ['403', '200', '200', '200'], 'ambient -> waypoint: 403; ambient -> ambient, sidecar, none: 200');
  t.same(codes('sleep-sc', urls), ['403', '200', '200', '200'], 'sidecar -> waypoint: 403; sidecar -> ambient, sidecar, none: 200');
  const body = lab(['exec', '--lab', NAME, 'sleep-sc', '--', 'curl', '-s', '-m', '5', 'http://reviews:9080/ip']).stdout;
  t.equal(body, 'RBAC: access denied', 'the waypoint\'s RBAC body reaches the sidecar client');
  t.equal(lab(['delete', '--lab', NAME, '-f', file]).code, 0);
  t.same(codes('sleep-sc', urls), ['200', '200', '200', '200'], 'after delete: 200 again');
});
