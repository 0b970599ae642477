// topologies/coexistence.yaml as a learner meets it: the sidecar pods' nat rules as
// iptables-save prints them in the pod, the proxy running as uid/gid 1337 beside the app, sidecar
// pods kept out of ztunnel-pods-ips and published to ztunnels as Istio does, and an L7 DENY on the waypoint turning exactly the
// waypoint paths (ambient -> waypoint, sidecar -> waypoint) into 403 while the others stay 200.
import t from 'tap';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, podIp, sh, upJson, waitFor } from './helpers.js';
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

t.test('a sidecar pod: its proxy is uid/gid 1337, the app is not; ztunnels leave it alone and know it as nativeHbone', async (t) => {
  if (!t.ok(up.ok, up.stderr)) return;
  // Every process in the pod's network namespace, by what it runs.
  const procs = (pod: string) => sh(`for p in $(ip netns pids al-${NAME}-pod-default.${pod}); do echo "$(awk '/^Uid:/{u=$2} /^Gid:/{g=$2} END{print u":"g}' /proc/$p/status) $(tr '\\0' ' ' < /proc/$p/cmdline)"; done`)
    .trim().split('\n');
  for (const pod of ['sleep-sc', 'httpbin-sc', 'httpbin-mtls']) {
    const ps = procs(pod);
    const proxy = ps.filter((l) => l.includes('sidecar-proxy/main.js'));
    t.equal(proxy.length, 1, `${pod}: one sidecar proxy`);
    t.match(proxy[0], /^1337:1337 /, `${pod}: the proxy runs as uid/gid 1337`);
    t.ok(ps.some((l) => !l.includes('sidecar-proxy') && l.startsWith('0:0 ')), `${pod}: the app beside it is not 1337`);
  }
  const ip = (pod: string) => podIp(up.summary, `default/${pod}`);
  const members = sh(`ip netns exec al-${NAME}-node-node-b ipset list ztunnel-pods-ips`);
  for (const pod of ['httpbin', 'reviews-v1']) t.match(members, new RegExp(`^${ip(pod).replace(/\./g, '\\.')} `, 'm'), `node-b: ambient ${pod} is in ztunnel-pods-ips`);
  for (const pod of ['httpbin-sc', 'httpbin-mtls', 'web']) t.notMatch(members, new RegExp(`^${ip(pod).replace(/\./g, '\\.')} `, 'm'), `node-b: ${pod} is not`);
  t.notMatch(sh(`ip netns exec al-${NAME}-node-node-a ipset list ztunnel-pods-ips`), new RegExp(`^${ip('sleep-sc').replace(/\./g, '\\.')} `, 'm'), 'node-a: sleep-sc is not');
  // What node-b's ztunnel was told (its /config_dump through the CLI).
  const cfg = JSON.parse(lab(['ztunnel', 'config', 'node-b', '--lab', NAME, '--json']).stdout) as { workloads: Record<string, { name: string; protocol: string; nativeHbone: boolean }> };
  const published = (pod: string) => { const w = cfg.workloads[ip(pod)]; return w && `${w.protocol} nativeHbone=${w.nativeHbone}`; };
  t.equal(published('httpbin-sc'), 'HBONE nativeHbone=true', 'a sidecar with HBONE (the ambient profile\'s default): HBONE, terminated by the pod itself');
  t.equal(published('sleep-sc'), 'HBONE nativeHbone=true');
  t.equal(published('httpbin-mtls'), 'TCP nativeHbone=false', 'hbone: false: TCP');
  t.equal(published('httpbin'), 'HBONE nativeHbone=false', 'an ambient pod: HBONE through its node\'s ztunnel');
});

t.test('an L7 DENY on the waypoint: the waypoint paths get 403, the others stay 200', async (t) => {
  const urls = ['http://reviews:9080/ip', 'http://httpbin:8000/ip', 'http://httpbin-sc:8000/ip', 'http://web:8000/ip'];
  t.same(codes('sleep', urls), ['200', '200', '200', '200'], 'before: sleep reaches all four');
  t.same(codes('sleep-sc', urls), ['200', '200', '200', '200'], 'before: sleep-sc reaches all four');
  const dir = mkdtempSync(join(tmpdir(), 'coex-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
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

t.test('topologies/bookinfo-sidecar.yaml: the page through productpage\'s and ratings\' sidecars, reviews behind a waypoint', async (t) => {
  const BI = 'coex-bi';
  t.teardown(() => { lab(['down', BI]); });
  const bi = upJson('topologies/bookinfo-sidecar.yaml', BI);
  if (!t.ok(bi.ok, bi.stderr)) return;
  const productpage = 'productpage-v1-7b4dbf9c75-pktj7';
  const ratings = 'ratings-v1-85cc46b6d4-r2bsc';
  /** The sidecar's request lines (its access log). */
  const requests = (pod: string) => sh(`cat /run/ambient-lab/${BI}/logs/sidecar-default.${pod}.log`).split('\n')
    .flatMap((l) => { try { return [JSON.parse(l) as Record<string, string>]; } catch { return []; } }).filter((l) => l.msg === 'request');
  const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
    const page = () => lab(['exec', '--lab', BI, 'sleep', '--', 'sh', '-c',
    'for i in 1 2 3 4 5 6; do curl -s -m 10 -o /dev/null -w "%{http_code}\\n" http://productpage:9080/productpage; done']).stdout.trim().split('\n');
  t.same(page(), Array(6).fill('200'), 'sleep (ambient) -> productpage (sidecar): 200 six times');
  // The access logs are written asynchronously: wait for the six page views' lines.
  const pp = await waitFor(() => { const l = requests(productpage); return l.filter((x) => x.direction === 'inbound').length >= 6 && l; }, 10_000, 'productpage\'s six inbound requests in its log', 200);
  t.ok(pp.some((l) => l.direction === 'inbound' && l['src.identity'] === spiffe('sleep')), 'productpage\'s sidecar took sleep\'s HBONE (ambient -> sidecar)');
  const out = (svc: string) => requests(productpage).filter((l) => l.direction === 'outbound' && l.authority === `${svc}:9080`);
  t.match(out('details').at(-1)?.upstream_transport, /^hbone 10\.244\.\d+\.\d+:15008$/, 'sidecar -> ambient details: HBONE to the pod');
  t.match(out('reviews').at(-1)?.upstream_transport, /^hbone 10\.244\.\d+\.\d+:15008$/, 'sidecar -> ambient reviews: HBONE to the pod');
  // reviews-v2 always calls ratings (the page may have drawn v1 six times).
  t.equal(lab(['exec', '--lab', BI, 'sleep', '--', 'curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', 'http://reviews-v2:9080/reviews/0']).stdout, '200');
  t.ok(await waitFor(() => requests(ratings).some((l) => l.direction === 'inbound' && l['src.identity'] === spiffe('bookinfo-reviews')), 10_000, 'ratings\' inbound line', 200),
    'ratings\' sidecar took reviews\' HBONE (ambient -> sidecar)');

  const before = out('reviews').length;
  const r = lab(['apply', '--lab', BI, '-f', 'topologies/bookinfo/waypoint-reviews.yaml']);
  if (!t.equal(r.code, 0, r.stderr)) return;
  t.match(r.stdout, /sidecar\/default\/productpage-v1-\S+ \(v2\)/, 'apply pushed the waypoint to productpage\'s sidecar');
  t.same(page(), Array(6).fill('200'), 'the page still answers');
  // The access log is written asynchronously: wait for the six new lines.
  const after = await waitFor(() => { const l = out('reviews').slice(before); return l.length >= 6 && l; }, 10_000, 'productpage\'s six reviews requests in its log', 200);
  t.same([...new Set(after.map((l) => l.upstream_transport.replace(/\d+\.\d+\.\d+\.\d+/, 'WAYPOINT')))], ['hbone WAYPOINT:15008 (waypoint default/bookinfo-reviews-istio-waypoint)'],
    'sidecar -> ambient reviews with a waypoint: every request went by HBONE to the waypoint');
  const via = after.at(-1);
  t.match(via?.upstream_host, /^10\.244\.\d+\.\d+:9080$/, 'for the reviews pod the sidecar chose');
});
