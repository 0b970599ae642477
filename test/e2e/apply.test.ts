// `lab apply` / `lab delete` / `lab get` on a running lab: a waypoint Gateway added and removed
// live, a VirtualService's fault, timeout and retries taking effect as soon as apply returns,
// without restarting the waypoint, and a bad file changing nothing.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { lab, upJson, podIp, sh, waitFor } from './helpers.js';

const NAME = 'applylab';
const F = 'test/fixtures/apply';
const curl = (path: string, extra = '') => lab(['exec', '--lab', NAME, 'sleep', '--', 'sh', '-c', `curl -s -m 8 ${extra} -w '\\n%{http_code}' http://reviews:9080${path}`]).stdout;
const origin = () => JSON.parse(curl('/ip').replace(/\n\d+$/, '')).origin as string;
const WP_NS = `al-${NAME}-pod-default.bookinfo-reviews-istio-waypoint`;
const wpPid = () => (JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout).processes as Array<{ id: string; pid: number; alive: boolean }>)
  .find((p) => p.id === 'waypoint/default/bookinfo-reviews-istio-waypoint');

const up = upJson('test/fixtures/topologies/apply.yaml', NAME);
t.teardown(() => { lab(['down', NAME]); });

t.test('a waypoint Gateway applied live starts its pod; traffic goes through it', async (t) => {
  if (!t.ok(up.ok, up.stderr)) return;
  const sleepIp = podIp(up.summary, 'default/sleep');
  t.equal(origin(), sleepIp, 'before: reviews sees sleep\'s own IP (ztunnel to ztunnel)');
  t.match(lab(['get', '--lab', NAME]).stdout, /no objects in lab "applylab"/);
  const r = lab(['apply', '--lab', NAME, '-f', `${F}/waypoint.yaml`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^gateway\.gateway\.networking\.k8s\.io\/bookinfo-reviews created$/m);
  t.match(r.stdout, /^started waypoint\/default\/bookinfo-reviews-istio-waypoint$/m);
  t.match(r.stdout, /config pushed to ztunnel\/node-a \(v2\), ztunnel\/node-b \(v2\)/, 'both ztunnels run the new config when apply returns');
  t.ok(existsSync(`/run/netns/${WP_NS}`), 'the waypoint pod\'s namespace exists');
  const status = JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout);
  const wp = status.pods.find((p: { name: string }) => p.name === 'default/bookinfo-reviews-istio-waypoint');
  t.match(wp, { role: 'waypoint', node: 'node-a' });
  t.equal(status.healthy, true, 'the lab is healthy');
  t.equal(origin(), wp.ip, 'after: reviews sees the waypoint\'s IP');
  t.match(lab(['get', 'gateways', '--lab', NAME]).stdout, /Gateway\s+default\s+bookinfo-reviews\s+applied from test\/fixtures\/apply\/waypoint\.yaml:2/);
  // Plaintext straight to a reviews pod (reference 3.4): the destination ztunnel hairpins it
  // through the waypoint, as the caller, when it holds the caller's key (same node) ...
  const v1 = podIp(up.summary, 'default/reviews-v1');
  const direct = (pod: string) => lab(['exec', '--lab', NAME, pod, '--', 'curl', '-s', '-m', '5', '-w', '\n%{http_code}', `http://${v1}:80/ip`]);
  const hairpin = direct('plain-b');
  t.equal(hairpin.stdout.replace(/\s/g, ''), `${JSON.stringify({ origin: wp.ip })}200`, 'plain-b (mode none, node-b) -> reviews-v1 pod IP: hairpinned, the pod sees the waypoint\'s IP');
  t.match(sh(`cat /run/ambient-lab/${NAME}/logs/waypoint-default.bookinfo-reviews-istio-waypoint.log`), /"path":"\/ip".*"src\.identity":"spiffe:\/\/cluster\.local\/ns\/default\/sa\/plain-b"/, 'the waypoint served it as plain-b');
  // ... and cannot for a caller on another node: no key to speak for it, so no connection.
  const far = direct('plain');
  t.not(far.code, 0, `plain (node-a) -> reviews-v1 pod IP: refused (curl exit ${far.code}, ${JSON.stringify(far.stdout)})`);
});

t.test('a VirtualService applied live: fault, timeout and retries, same waypoint process', async (t) => {
  const pid = wpPid()?.pid;
  const r = lab(['apply', '--lab', NAME, '-f', `${F}/fault.yaml`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /virtualservice\.networking\.istio\.io\/reviews created\nconfig pushed to waypoint\/default\/bookinfo-reviews-istio-waypoint \(v2\)/);
  t.equal(curl('/ip'), 'fault filter abort\n418', 'fault abort: 418 with Envoy\'s body, right after apply returned');
  const t0 = Date.now();
  t.equal(curl('/delay/3'), 'upstream request timeout\n504', 'timeout 0.5s: 504');
  const took = Date.now() - t0;
  t.ok(took < 2500, `the 504 came at the route timeout, not after the 3 s delay (${took} ms with lab exec)`);
  const upstreamSaw = () => ['reviews-v1', 'reviews-v2']
    .map((p) => readFileSync(`/run/ambient-lab/${NAME}/logs/default.${p}.log`, 'utf8').split('\n').filter((l) => l.includes('"path":"/status/503"')).length)
    .reduce((a, b) => a + b, 0);
  const before = upstreamSaw();
  t.match(curl('/status/503'), /\n503$/, 'retries exhausted: 503');
  await waitFor(() => upstreamSaw() - before >= 3, 5000, 'the reviews pods to log the attempts');
  t.equal(upstreamSaw() - before, 3, 'the reviews pods saw 3 requests for one client request (1 + 2 retries)');
  const delayed = lab(['exec', '--lab', NAME, 'sleep', '--', 'curl', '-s', '-m', '8', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', 'http://reviews:9080/headers']).stdout.split(' ');
  t.equal(delayed[0], '200', 'fault delay: the request still succeeds');
  t.ok(Number(delayed[1]) >= 1 && Number(delayed[1]) < 2.5, `fault delay 1s: curl measured ${delayed[1]} s`);
  const logs = lab(['logs', '--lab', NAME, 'bookinfo-reviews-istio-waypoint']).stdout;
  t.match(logs, /path: "\/status\/503"[\s\S]*?response_flags: "URX"[\s\S]*?attempts: 3/, 'the waypoint tried 3 times (1 + 2 retries)');
  t.match(logs, /path: "\/headers"[\s\S]*?response_flags: "DI"/, 'the delayed request is logged with flag DI');
  t.equal(wpPid()?.pid, pid, 'the waypoint was not restarted');
});

t.test('a bad file changes nothing', async (t) => {
  const before = lab(['get', '--lab', NAME, '-o', 'json']).stdout;
  const r = lab(['apply', '--lab', NAME, '-f', `${F}/bad-field.yaml`]);
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, /test\/fixtures\/apply\/bad-field\.yaml:8:7: VirtualService default\/reviews-mirror: spec\.http\[0\]\.mirror: not supported by the lab/);
  t.equal(lab(['get', '--lab', NAME, '-o', 'json']).stdout, before, 'the applied objects are unchanged');
  t.equal(curl('/ip'), 'fault filter abort\n418', 'behaviour unchanged');
  const missing = lab(['delete', '--lab', NAME, '-f', `${F}/reviews-v2.yaml`]);
  t.equal(missing.code, 2, 'deleting what was never applied: exit 2');
  t.match(missing.stderr, /was not applied to lab "applylab" \(not found\)/);
});

t.test('delete: the route goes', async (t) => {
  const d1 = lab(['delete', '--lab', NAME, '-f', `${F}/fault.yaml`]);
  t.equal(d1.code, 0, d1.stderr);
  t.match(curl('/ip'), /\n200$/, 'no route: 200 again');
});

t.test('an L7 DENY policy (security.istio.io/v1, targetRefs) applied from stdin, listed, deleted', async (t) => {
  const text = readFileSync(`${F}/deny.yaml`, 'utf8');
  const r = lab(['apply', '--lab', NAME, '-f', '-'], { input: text });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^authorizationpolicy\.security\.istio\.io\/reviews-deny created$/m);
  t.match(r.stdout, /config pushed to waypoint\/default\/bookinfo-reviews-istio-waypoint/, 'the waypoint runs it when apply returns');
  t.equal(curl('/ip', '-X DELETE'), 'RBAC: access denied\n403', 'DELETE: denied, with Envoy\'s body');
  t.equal(curl('/status/200', "-H 'x-block: yes'"), 'RBAC: access denied\n403', '/status/* with x-block: yes: denied');
  t.equal(curl('/status/200', "-H 'x-block: no'"), '\n200', 'the same path with another header value: allowed');
  t.match(curl('/ip'), /\n200$/, 'GET /ip matches no DENY rule: allowed');
  t.match(curl('/ip', '-X POST'), /\n200$/, 'other methods too');
  const yaml = lab(['get', 'authorizationpolicies', '--lab', NAME, '-o', 'yaml']);
  t.equal(yaml.code, 0, yaml.stderr);
  t.match(yaml.stdout, /kind: AuthorizationPolicy\n[\s\S]*name: reviews-deny[\s\S]*action: DENY/, 'lab get -o yaml prints the applied object');
  const d = lab(['delete', '--lab', NAME, '-f', `${F}/deny.yaml`]);
  t.equal(d.code, 0, d.stderr);
  t.match(curl('/ip', '-X DELETE'), /\n200$/, 'deleted: DELETE is allowed again');
});

t.test('an HTTPRoute applied live: its matches, filters and timeout, in the waypoint', async (t) => {
  const r = lab(['apply', '--lab', NAME, '-f', `${F}/httproute.yaml`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^httproute\.gateway\.networking\.k8s\.io\/reviews created$/m);
  /** curl -D -: the response head and the body, apart. */
  const get = (args: string) => {
    const out = lab(['exec', '--lab', NAME, 'sleep', '--', 'sh', '-c', `curl -s -m 8 -D - ${args}`]).stdout;
    const i = out.indexOf('\r\n\r\n');
    return { head: out.slice(0, i), body: out.slice(i + 4) };
  };
  const hdr = get(`-H 'x-lab: set-me' http://reviews:9080/headers`);
  const seen = JSON.parse(hdr.body).headers as Record<string, string>;
  t.same([seen['X-Lab'], seen['X-Added']], ['was-set', '1'], 'Exact path + header match: RequestHeaderModifier set and add reached the pod');
  t.match(hdr.head, /^x-route: headers-rule\r?$/m, 'ResponseHeaderModifier added a response header');
  const other = get('http://reviews:9080/headers');
  t.equal(JSON.parse(other.body).headers['X-Lab'], undefined, 'without the header: another rule, nothing set');
  t.notMatch(other.head, /x-route/);
  t.equal(curl('/old/201'), '\n201', 'PathPrefix /old with URLRewrite ReplacePrefixMatch /status: the pod answered /status/201');
  const redirect = get('http://reviews:9080/go/42');
  t.match(redirect.head, /^HTTP\/1\.1 301 [\s\S]*^location: http:\/\/reviews:9080\/hostname\r?$/m, 'RegularExpression path + method GET: RequestRedirect 301');
  t.match(curl('/go/42', '-X POST'), /\n404$/, 'POST does not match that rule: the pod itself answers 404');
  t.equal(curl('/ip?teapot=yes'), '\n418', 'query param match: URLRewrite ReplaceFullPath /status/418');
  t.equal(curl('/delay/3'), 'upstream request timeout\n504', 'timeouts.request 500ms: 504');
  t.match(lab(['logs', '--lab', NAME, 'bookinfo-reviews-istio-waypoint']).stdout, /path: "\/go\/42"[\s\S]*?route: "HTTPRoute default\/reviews rules\[2\]/, 'the access log names the HTTPRoute rule');
  const d = lab(['delete', '--lab', NAME, '-f', `${F}/httproute.yaml`]);
  t.equal(d.code, 0, d.stderr);
  t.match(curl('/old/201'), /\n404$/, 'deleted: /old is not rewritten any more');
});

t.test('delete the waypoint: traffic goes direct again', async (t) => {
  const d2 = lab(['delete', '--lab', NAME, '-f', `${F}/waypoint.yaml`]);
  t.equal(d2.code, 0, d2.stderr);
  t.match(d2.stdout, /^stopped waypoint\/default\/bookinfo-reviews-istio-waypoint$/m);
  t.notOk(existsSync(`/run/netns/${WP_NS}`), 'the waypoint\'s namespace is gone');
  t.notOk(existsSync(`/etc/netns/${WP_NS}`), 'and its /etc/netns files');
  t.equal(origin(), podIp(up.summary, 'default/sleep'), 'reviews sees sleep\'s IP again');
  // The supervisor must not bring the deleted waypoint back: once it has read the new build
  // (its log says so), nothing of the waypoint may run.
  const supLog = `/run/ambient-lab/${NAME}/logs/supervisor.log`;
  await waitFor(() => {
    const lines = sh(`grep 'build changed' ${supLog} || true`).trim().split('\n');
    return !!lines[0] && !lines[lines.length - 1].includes('waypoint/');
  }, 5000, 'the supervisor to drop the waypoint from what it supervises');
  t.equal(sh(`pgrep -f '[w]aypoint/main.js.*${NAME}' || true`).trim(), '', 'no waypoint process runs');
  t.equal(JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout).healthy, true, 'the lab is healthy');
});

t.test('an L7 rule with no waypoint: ztunnel drops the ALLOW rule, the client gets a reset', async (t) => {
  const r = lab(['apply', '--lab', NAME, '-f', `${F}/l7-no-waypoint.yaml`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^warning: test\/fixtures\/apply\/l7-no-waypoint\.yaml:13:34: AuthorizationPolicy default\/reviews-get-only: .*L7 fields .* but no waypoint enforces this policy/m, 'apply warns, naming the file and line');
  const get = lab(['exec', '--lab', NAME, 'sleep', '--', 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', 'http://reviews:9080/ip']);
  t.ok([56, 7].includes(get.code), `even sleep's GET is reset (curl exit ${get.code}; 56, or 7 when the reset beats curl's connect check)`);
  t.equal(get.stdout, '000', 'no HTTP response at all');
  t.match(sh(`cat /run/ambient-lab/${NAME}/logs/ztunnel-node-b.log`), /no ALLOW policy matched \(default\/reviews-get-only\)/, 'node-b\'s ztunnel denied it by that policy');
  const d = lab(['delete', '--lab', NAME, '-f', `${F}/l7-no-waypoint.yaml`]);
  t.equal(d.code, 0, d.stderr);
  t.match(curl('/ip'), /\n200$/, 'deleted: allowed again');
});

t.test('PeerAuthentication STRICT (no waypoint left): plaintext into ambient pods is refused, mTLS still flows', async (t) => {
  const v1 = podIp(up.summary, 'default/reviews-v1');
  const plain = () => lab(['exec', '--lab', NAME, 'plain', '--', 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${v1}:80/ip`]);
  t.equal(plain().stdout, '200', 'PERMISSIVE (default): a mode:none pod reaches reviews in plaintext');
  const r = lab(['apply', '--lab', NAME, '-f', `${F}/strict.yaml`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /peerauthentication\.security\.istio\.io\/default created/);
  const denied = plain();
  // ztunnel resets a denied connection right after accepting it; when the RST overtakes curl's
  // check of its own connect, curl reports the same reset as exit 7 instead of 56.
  t.ok([56, 7].includes(denied.code), `STRICT: the connection is reset (curl exit 56, or 7 when the reset beats curl's connect check; got ${denied.code})`);
  t.equal(denied.stdout, '000', 'no HTTP response at all');
  t.match(sh(`cat /run/ambient-lab/${NAME}/logs/ztunnel-node-b.log`), /denied by DENY policy default\/istio_converted_static_strict/, 'node-b\'s ztunnel names the converted policy');
  t.equal(lab(['exec', '--lab', NAME, 'sleep', '--', 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${v1}:80/ip`]).stdout, '200', 'an ambient client (HBONE, mTLS) still gets through');
  const d = lab(['delete', '--lab', NAME, '-f', `${F}/strict.yaml`]);
  t.equal(d.code, 0, d.stderr);
  t.equal(plain().stdout, '200', 'deleted: plaintext flows again');
});
