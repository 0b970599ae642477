// A waypoint in the data path (test/fixtures/topologies/waypoint.yaml): sleep -> reviews goes
// client ztunnel -> waypoint (HBONE, authority = the Service VIP:port) -> L7 routing and policy
// -> HBONE with the waypoint's identity -> the destination ztunnel -> the pod. Real namespaces,
// real processes, real requests.
import t from 'tap';
import { lab, upJson, podIp, sh, REPO } from './helpers.js';
import { seriesValue } from '../../src/proxy/metrics.js';

// WAYPOINT_E2E_LAB: another lab name, for a run beside labs other people have up.
const NAME = process.env.WAYPOINT_E2E_LAB ?? 'wp';
const STATE = `/run/ambient-lab/${NAME}`;
const WP = 'bookinfo-reviews-istio-waypoint';

/** Runs `n` curls inside one pod (one exec) and returns their outputs, one per line. */
function curlLoop(pod: string, n: number, args: string): string[] {
  const r = lab(['exec', '--lab', NAME, pod, '--', 'sh', '-c', `for i in $(seq ${n}); do curl -s -m 5 ${args}; echo; done`], { timeoutMs: 180_000 });
  return r.stdout.split('\n').filter(Boolean);
}
const curl1 = (pod: string, args: string) => lab(['exec', '--lab', NAME, pod, '--', 'sh', '-c', `curl -s -m 5 -w '\\n%{http_code}' ${args}`]);

const up = upJson('test/fixtures/topologies/waypoint.yaml', NAME);
t.teardown(() => { lab(['down', NAME]); });

t.test('the waypoint pod exists, is never captured, and serves reviews', async (t) => {
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;
  const wpIp = podIp(up.summary, `default/${WP}`);
  t.match(up.summary.pods.find((p: { name: string }) => p.name === `default/${WP}`), { role: 'waypoint', node: 'node-a', mode: 'none' });
  t.notMatch(sh(`ip netns exec al-${NAME}-node-node-a ipset list ztunnel-pods-ips`), wpIp, 'the waypoint is not in ztunnel-pods-ips');
  const zc = JSON.parse(lab(['ztunnel', 'config', 'node-a', '--lab', NAME, '--json']).stdout);
  const reviews = Object.values(zc.workloads as Record<string, { name: string; waypointAddresses: string[] }>).filter((w) => w.name.startsWith('reviews-'));
  t.same(reviews.map((w) => w.waypointAddresses), [[wpIp], [wpIp]], 'ztunnel knows the reviews pods\' waypoint');
  const sleepW = Object.values(zc.workloads as Record<string, { name: string; waypointAddresses: string[] }>).find((w) => w.name === 'sleep')!;
  t.same(sleepW.waypointAddresses, [], 'sleep (another service account) has no waypoint');
});

t.test('VirtualService 90/10 split and header match, applied by the waypoint', async (t) => {
  const out = curlLoop('sleep', 300, 'http://reviews:9080/hostname');
  t.equal(out.length, 300, 'every request answered');
  const v2 = out.filter((l) => l === 'reviews-v2').length;
  const v1 = out.filter((l) => l === 'reviews-v1').length;
  t.equal(v1 + v2, 300, `only v1 and v2 answer (${v1}/${v2})`);
  t.ok(v2 >= 12 && v2 <= 54, `v2 got ${v2}/300 = ${(v2 / 3).toFixed(1)}% (weight 10%, accepted 4-18%)`);
  const jason = curlLoop('sleep', 10, `-H 'end-user: jason' http://reviews:9080/hostname`);
  t.same([...new Set(jason)], ['reviews-v2'], 'end-user: jason always goes to v2');
});

t.test('h2c (HTTP/2 with prior knowledge) through the waypoint: 200, routed as HTTP/1.1 is', async (t) => {
  const one = lab(['exec', '--lab', NAME, 'sleep', '--', 'sh', '-c', `curl -s -m 5 --http2-prior-knowledge -w '\\n%{http_version} %{http_code}' http://reviews:9080/hostname`]);
  t.match(one.stdout, /^reviews-v[12]\n+2 200$/, `curl spoke HTTP/2 and got 200 (${JSON.stringify(one.stdout)})`);
  const jason = curlLoop('sleep', 10, `--http2-prior-knowledge -H 'end-user: jason' http://reviews:9080/hostname`);
  t.same([...new Set(jason)], ['reviews-v2'], 'end-user: jason always goes to v2');
  const out = curlLoop('sleep', 100, '--http2-prior-knowledge http://reviews:9080/hostname');
  const v1 = out.filter((l) => l === 'reviews-v1').length;
  const v2 = out.filter((l) => l === 'reviews-v2').length;
  t.equal(v1 + v2, 100, `every request answered by v1 or v2 (${v1}/${v2})`);
  t.ok(v2 <= 25, `v2 got ${v2}/100 (weight 10%)`);
  const post = curl1('sleep', '--http2-prior-knowledge -X POST http://reviews:9080/hostname');
  t.equal(post.stdout, 'RBAC: access denied\n403', 'POST over h2c: the same 403');
});

t.test('L7 AuthorizationPolicy on the waypoint: 403 RBAC: access denied', async (t) => {
  const get = curl1('sleep', 'http://reviews:9080/hostname');
  t.match(get.stdout, /\n200$/, 'sleep GET: allowed');
  const post = curl1('sleep', '-X POST http://reviews:9080/hostname');
  t.equal(post.stdout, 'RBAC: access denied\n403', 'sleep POST: 403 with Envoy\'s body');
  const other = curl1('other', 'http://reviews:9080/hostname');
  t.equal(other.stdout, 'RBAC: access denied\n403', 'another identity: 403');
  const headers = lab(['exec', '--lab', NAME, 'sleep', '--', 'curl', '-s', '-m', '5', '-D', '-', '-o', '/dev/null', '-X', 'POST', 'http://reviews:9080/hostname']).stdout;
  t.match(headers, /^server: istio-envoy\r?$/m, 'the local reply carries server: istio-envoy');
  t.match(headers, /^content-type: text\/plain\r?$/m);
});

t.test('the app sees the waypoint\'s address; the destination ztunnel sees its identity', async (t) => {
  const wpIp = podIp(up.summary, `default/${WP}`);
  const r = curl1('sleep', 'http://reviews:9080/ip');
  t.equal(JSON.parse(r.stdout.replace(/\n200$/, '')).origin, wpIp, 'reviews sees the waypoint pod IP (no Forwarded from 1.18-1.20 waypoints)');
  const echo = lab(['exec', '--lab', NAME, 'sleep', '--', 'bash', '-c', 'exec 3<>/dev/tcp/echo/9000; echo hello-waypoint >&3; read -t 5 line <&3; echo "$line"']);
  t.equal(echo.stdout.trim(), 'hello-waypoint', 'a TCP Service behind the waypoint is proxied as TCP');
  const zlog = sh(`cat ${STATE}/logs/ztunnel-node-b.log`);
  t.match(zlog, new RegExp(`"src.identity":"spiffe://cluster.local/ns/default/sa/${WP}".*"dst.addr":"${podIp(up.summary, 'default/echo')}:9000"`), 'node-b\'s ztunnel took the TCP stream from the waypoint\'s identity');
});

t.test('HBONE straight to a pod behind a waypoint is refused (401)', async (t) => {
  const manifest = JSON.parse(sh(`cat ${STATE}/certs/ztunnel-node-a/identities.json`));
  const id = manifest['spiffe://cluster.local/ns/default/sa/sleep'];
  const dir = `${STATE}/certs/ztunnel-node-a`;
  const v1 = podIp(up.summary, 'default/reviews-v1');
  const r = lab(['exec', '--lab', NAME, 'plain', '--', process.execPath, `${REPO}/test/fixtures/hbone-probe.mjs`, `${v1}:15008`, `${v1}:80`, `${dir}/${id.cert}`, `${dir}/${id.key}`]);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
  t.equal(res.status, 401, `sleep's identity, bypassing the waypoint: 401 (${JSON.stringify(res)})`);
  t.match(sh(`cat ${STATE}/logs/ztunnel-node-b.log`), /waypoint; direct HBONE refused/, 'the destination ztunnel logs why');
});

t.test('waypoint metrics and access log', async (t) => {
  const metrics = lab(['exec', '--lab', NAME, WP, '--', 'curl', '-s', 'http://127.0.0.1:15020/metrics']).stdout;
  const base = { reporter: 'destination', destination_principal: `spiffe://cluster.local/ns/default/sa/${WP}`, destination_service: 'reviews.default.svc.cluster.local', source_principal: 'spiffe://cluster.local/ns/default/sa/sleep', request_protocol: 'http', connection_security_policy: 'mutual_tls' };
  t.ok(seriesValue(metrics, 'istio_requests_total', { ...base, response_code: '200' }) >= 300, 'istio_requests_total counts the 200s');
  t.ok(seriesValue(metrics, 'istio_requests_total', { ...base, response_code: '403' }) >= 1, 'and the 403');
  t.ok(seriesValue(metrics, 'istio_request_duration_milliseconds_count', { ...base, response_code: '200' }) >= 300, 'durations are recorded');
  const logs = lab(['logs', '--lab', NAME, WP]).stdout;
  t.match(logs, /route: "VirtualService default\/reviews http\[1\] rule 1"/, 'the access log names the rule');
  t.match(logs, /backend: "reviews\.default\.svc\.cluster\.local:9080 subset v2 \(10%\)"/, 'and the backend with its weight');
  t.match(logs, /response_code_details: "rbac_access_denied"/, 'and the RBAC denial');
  // Piped (not a TTY), each JSON record is printed once, pretty, never glued raw after another.
  const records = lab(['logs', '--lab', NAME, WP, '--raw']).stdout.split('\n').filter((l) => l.startsWith('{')).length;
  t.notMatch(logs, /\{"level":/, 'no raw JSON in the pretty output');
  t.equal((logs.match(/^\[\d\d:\d\d:\d\d\.\d{3}\] [A-Z]+ /gm) ?? []).length, records, `one pretty header per record of the log (${records})`);
});

t.test('lab proxy-config shows the waypoint\'s listeners, routes, clusters and policies', async (t) => {
  const r = lab(['proxy-config', WP, '--lab', NAME]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /reviews\.default\.svc\.cluster\.local\s+10\.96\.0\.11\s+9080\s+HTTP/, 'reviews:9080 is an HTTP listener');
  t.match(r.stdout, /echo\.default\.svc\.cluster\.local\s+10\.96\.0\.12\s+9000\s+TCP/, 'echo:9000 is TCP');
  t.match(r.stdout, /1\s+\*\s+reviews\/v1 90, reviews\/v2 10/, 'the 90/10 rule');
  t.match(r.stdout, /inbound-vip\|9080\|http\/v2\|reviews\.default\.svc\.cluster\.local\s+LEAST_REQUEST\s+10\.244\.1\.\d+:80\s+\d+\/\d+\/\d+\n/, 'the v2 cluster with its one endpoint and its upstream cx/rq/pending');
  t.match(r.stdout, /default\/reviews-viewer\s+ALLOW/);
  const notWp = lab(['proxy-config', 'sleep', '--lab', NAME]);
  t.equal(notWp.code, 2);
  t.match(notWp.stderr, /"sleep" is not a waypoint/);
});
