// Sidecar pods in the data path, with ambient pods, a waypoint and plain pods around them: real
// namespaces, istio-cni's nat rules in the sidecar pods, the sidecar proxy as uid 1337, real
// requests. Lab `sc` (topologies/coexistence.yaml) walks every path of the coexistence table;
// lab `sc-l7` (test/fixtures/topologies/sidecar-l7.yaml) what a sidecar enforces at each end.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, upJson, podIp, sh, waitFor } from './helpers.js';
import { seriesValue } from '../../src/proxy/metrics.js';

// SIDECAR_E2E_PREFIX: prefixed lab names, for a run beside labs other people have up.
const NAME = `${process.env.SIDECAR_E2E_PREFIX ?? ''}sc`;
const L7 = `${process.env.SIDECAR_E2E_PREFIX ?? ''}sc-l7`;
const WP = 'bookinfo-reviews-istio-waypoint';
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

const exec = (labName: string, pod: string, script: string) => lab(['exec', '--lab', labName, pod, '--', 'sh', '-c', script], { timeoutMs: 120_000 });
/** `<status>` on the last line, the body before it. */
const curl = (labName: string, pod: string, args: string) => {
  const r = exec(labName, pod, `curl -s -m 5 -w '\\n%{http_code}' ${args}; echo " exit=$?"`);
  const m = /\n(\d{3}) exit=(\d+)\s*$/.exec(r.stdout);
  return { body: m ? r.stdout.slice(0, m.index) : r.stdout, status: m ? Number(m[1]) : 0, exit: m ? Number(m[2]) : -1, raw: r.stdout };
};
/** The JSON lines of a proxy's log file (`sidecar-default.sleep-sc`, `waypoint-default.<name>`). */
const logLines = (labName: string, file: string): Array<Record<string, unknown>> =>
  sh(`cat /run/ambient-lab/${labName}/logs/${file}.log`).split('\n').flatMap((l) => {
    try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; }
  });

t.teardown(() => { lab(['down', NAME]); lab(['down', L7]); });

t.test('coexistence: every path answers, and each hop is the one the reference names', async (t) => {
  const up = upJson('topologies/coexistence.yaml', NAME);
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;
  const ip = (pod: string) => podIp(up.summary, `default/${pod}`);
  const wpIp = ip(WP);
  const targets: Array<[string, number]> = [['httpbin', 8000], ['reviews', 9080], ['httpbin-sc', 8000], ['httpbin-mtls', 8000], ['web', 8000]];
  // What the app sees as the client address: the caller (ambient, none), the waypoint, or the server sidecar's 127.0.0.6.
  const origin = (from: string, to: string) => (to === 'reviews' ? wpIp : to.startsWith('httpbin-') ? '127.0.0.6' : ip(from));
  // The identity in X-Forwarded-Client-Cert, which only a server sidecar adds, and only for a peer
  // that proved one: HBONE (ztunnel or sidecar) to httpbin-sc, Istio mTLS (sidecar) to httpbin-mtls.
  const xfcc = (from: string, to: string): string | undefined => {
    if (from === 'sleep-plain') return undefined;
    if (to === 'httpbin-sc') return `By=${spiffe(to)};URI=${spiffe(from)}`;
    if (to === 'httpbin-mtls' && from === 'sleep-sc') return `By=${spiffe(to)};URI=${spiffe(from)}`;
    return undefined;
  };
  for (const from of ['sleep', 'sleep-sc', 'sleep-plain']) {
    // A plaintext client's ztunnel hairpin through the waypoint is ztunnel's business, not tested here.
    const tos = targets.filter(([to]) => !(from === 'sleep-plain' && to === 'reviews'));
    const out = exec(NAME, from, tos.map(([to, port]) => `echo "${to} $(curl -s -m 5 -w ' %{http_code}' http://${to}:${port}/get | tr -d '\\n')"`).join('; ')).stdout;
    for (const [to] of tos) {
      const m = new RegExp(`^${to} (.*) (\\d{3})$`, 'm').exec(out);
      if (!t.ok(m && m[2] === '200', `${from} -> ${to}: 200 (${m?.[0] ?? out})`)) continue;
      const seen = JSON.parse(m![1]) as { origin: string; headers: Record<string, string> };
      t.equal(seen.origin, origin(from, to), `${from} -> ${to}: the app sees ${origin(from, to)}`);
      // Envoy's Istio mTLS form also carries Hash= and Subject=; the identity is the URI.
      const cert = seen.headers['X-Forwarded-Client-Cert']?.replace(/;Hash=[0-9a-f]+;Subject=""/, '');
      t.equal(cert, xfcc(from, to), `${from} -> ${to}: X-Forwarded-Client-Cert ${xfcc(from, to) ?? 'absent'}`);
    }
  }

  // How sleep-sc's sidecar reached each endpoint (its per-request access log).
  const client = logLines(NAME, 'sidecar-default.sleep-sc').filter((l) => l.msg === 'request' && l.direction === 'outbound');
  const via = (svc: string) => client.find((l) => String(l['dst.service']).startsWith(`${svc}.`))?.upstream_transport;
  t.equal(via('httpbin'), `hbone ${ip('httpbin')}:15008`, 'sidecar -> ambient: HBONE to the pod\'s :15008');
  t.equal(via('reviews'), `hbone ${wpIp}:15008 (waypoint default/${WP})`, 'sidecar -> ambient with a waypoint: HBONE to the waypoint');
  t.equal(via('httpbin-sc'), `hbone ${ip('httpbin-sc')}:15008`, 'sidecar -> sidecar with HBONE: its :15008');
  t.equal(via('httpbin-mtls'), 'istio-mtls', 'sidecar -> sidecar without HBONE: Istio mTLS to the app port');
  t.equal(via('web'), 'plaintext', 'sidecar -> mode none: plaintext');
  const wp = logLines(NAME, `waypoint-default.${WP}`).find((l) => l.msg === 'request' && l['src.identity'] === spiffe('sleep-sc'));
  t.ok(wp, 'the waypoint served sleep-sc\'s request, from sleep-sc\'s identity');
  // httpbin-mtls has no :15008, so a peer identity there can only come from Istio mTLS on 15006.
  const mtls = logLines(NAME, 'sidecar-default.httpbin-mtls').filter((l) => l.msg === 'request');
  t.ok(mtls.some((l) => l['src.identity'] === spiffe('sleep-sc')), 'httpbin-mtls took Istio mTLS on 15006 from sleep-sc');
  t.ok(mtls.some((l) => l['src.addr'] === ip('sleep') && !l['src.identity']), 'and plaintext from the ambient sleep (its ztunnel has no HBONE to it)');
  t.equal(exec(NAME, 'sleep-plain', `curl -s -m 3 -o /dev/null -w '%{http_code}' http://${ip('httpbin-mtls')}:15008/; echo " $?"`).stdout.trim(), '000 7', 'a sidecar without HBONE does not listen on 15008');
  const sc = logLines(NAME, 'sidecar-default.httpbin-sc').filter((l) => l.msg === 'connection complete');
  t.ok(sc.some((l) => l.via === 'hbone+http' && l['src.identity'] === spiffe('sleep')), 'httpbin-sc terminated HBONE from the ambient sleep\'s ztunnel, as sleep');
});

t.test('coexistence: headers each sidecar adds; metrics and config_dump', async (t) => {
  const fromSc = curl(NAME, 'sleep-sc', '-D - http://httpbin-sc:8000/headers');
  t.equal(fromSc.status, 200);
  t.match(fromSc.body, /^server: envoy\r?$/m, 'a client with a sidecar sees its outbound\'s server: envoy');
  t.match(fromSc.body, /"X-Envoy-Attempt-Count": "1"/, 'the client sidecar counts attempts');
  t.match(fromSc.body, new RegExp(`"X-Forwarded-Client-Cert": "By=${spiffe('httpbin-sc')};URI=${spiffe('sleep-sc')}"`), 'the server sidecar appends the peer\'s identity');
  // h2c from an ambient client: ztunnel carries the bytes over HBONE to httpbin-sc's 15008, whose
  // sidecar serves HTTP/2 with prior knowledge and goes on to the app in HTTP/1.1.
  const h2c = curl(NAME, 'sleep', '--http2-prior-knowledge -D - http://httpbin-sc:8000/headers');
  t.equal(h2c.status, 200, `h2c into a sidecar pod over HBONE: 200 (${h2c.raw.slice(0, 200)})`);
  t.match(h2c.body, /^HTTP\/2 200 ?\r?$/m, 'the client spoke HTTP/2');
  t.match(h2c.body, /^server: istio-envoy\r?$/m, 'answered by the server sidecar');
  t.match(h2c.body, /"Host": "httpbin-sc:8000"/, 'the app got the :authority as Host');
  t.match(h2c.body, new RegExp(`"X-Forwarded-Client-Cert": "By=${spiffe('httpbin-sc')};URI=${spiffe('sleep')}"`), 'and the peer identity, as over HTTP/1.1');
  const fromAmbient = curl(NAME, 'sleep', '-D - http://httpbin-sc:8000/headers');
  t.match(fromAmbient.body, /^server: istio-envoy\r?$/m, 'a client without a sidecar sees the server sidecar\'s istio-envoy');
  t.match(fromAmbient.body, new RegExp(`"X-Forwarded-Client-Cert": "By=${spiffe('httpbin-sc')};URI=${spiffe('sleep')}"`));
  t.notMatch(fromAmbient.body, /X-Envoy-Attempt-Count/, 'no client sidecar, no attempt count');

  const server = exec(NAME, 'httpbin-sc', 'curl -s -m 5 http://127.0.0.1:15090/stats/prometheus').stdout;
  t.ok(seriesValue(server, 'istio_requests_total', { reporter: 'destination', source_principal: spiffe('sleep-sc'), destination_principal: spiffe('httpbin-sc'), connection_security_policy: 'mutual_tls', response_code: '200' }) >= 1,
    'the server sidecar reports as destination');
  const client = exec(NAME, 'sleep-sc', 'curl -s -m 5 http://127.0.0.1:15090/stats/prometheus').stdout;
  t.ok(seriesValue(client, 'istio_requests_total', { reporter: 'source', destination_service: 'httpbin-sc.default.svc.cluster.local', source_principal: spiffe('sleep-sc'), response_code: '200' }) >= 1,
    'the client sidecar reports as source');
  t.ok(seriesValue(client, 'istio_tcp_connections_opened_total', { reporter: 'source' }) >= 1, 'and counts the connections it carried');

  const dump = JSON.parse(exec(NAME, 'sleep-sc', 'curl -s -m 5 http://127.0.0.1:15000/config_dump').stdout);
  t.match(dump, { kind: 'sidecar', identity: spiffe('sleep-sc'), hbone: true, config: { version: 1 } });
  const reviews = dump.clusters.find((c: { name: string }) => c.name === 'outbound|9080||reviews.default.svc.cluster.local');
  t.match(reviews.endpoints[0].transport, /^hbone .*:15008 \(waypoint default\/bookinfo-reviews-istio-waypoint\)$/);
  t.equal(exec(NAME, 'sleep-sc', 'curl -s -m 5 -o /dev/null -w "%{http_code}" http://127.0.0.1:15021/healthz/ready').stdout, '200');

  // `lab proxy-config POD`: listeners, routes, clusters with each endpoint's transport.
  const pc = lab(['proxy-config', 'sleep-sc', '--lab', NAME]);
  t.equal(pc.code, 0, pc.stderr);
  t.match(pc.stdout, /^virtualOutbound +0\.0\.0\.0:15001 +REDIRECTed outbound .*SO_ORIGINAL_DST/m, 'listeners: 15001');
  t.match(pc.stdout, /^virtualInbound +0\.0\.0\.0:15006 +REDIRECTed inbound .*PERMISSIVE/m, 'listeners: 15006');
  t.match(pc.stdout, /^connect_terminate +0\.0\.0\.0:15008 +HBONE/m, 'listeners: 15008');
  t.match(pc.stdout, /^10\.96\.0\.12_9080 +10\.96\.0\.12:9080 +HTTP: routes of reviews\.default\.svc\.cluster\.local:9080/m, 'listeners: one per Service port');
  t.match(pc.stdout, /^routes: none \(every Service goes to its default route: all endpoints, retries 2 on connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503\)$/m, "routes: none of its own, Istio's default retries at a sidecar");
  t.match(pc.stdout, /^outbound\|9080\|\|reviews\.default\.svc\.cluster\.local +LEAST_REQUEST +\S+:80 \(hbone \S+:15008 \(waypoint default\/bookinfo-reviews-istio-waypoint\)\) +\d+\/\d+\/\d+$/m, 'clusters and endpoints: reviews through its waypoint');
  t.match(pc.stdout, /^outbound\|8000\|\|httpbin-mtls\.default\.svc\.cluster\.local +LEAST_REQUEST +\S+:80 \(istio-mtls\) +\d+\/\d+\/\d+$/m, 'httpbin-mtls over Istio mTLS');
  t.notMatch(lab(['proxy-config', 'httpbin-mtls', '--lab', NAME, 'listeners']).stdout, /connect_terminate/, 'hbone: false: no 15008 listener');
});

t.test('coexistence: a sidecar without HBONE under STRICT refuses the ambient client\'s plaintext (ztunnel sends it TCP), not a sidecar\'s Istio mTLS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-sc-strict-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'strict.yaml');
  writeFileSync(file, 'apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: mtls-strict}\nspec:\n  selector: {matchLabels: {app: httpbin-mtls}}\n  mtls: {mode: STRICT}\n');
  const applied = lab(['apply', '--lab', NAME, '-f', file]);
  if (!t.equal(applied.code, 0, applied.stderr)) return;
  const fromAmbient = curl(NAME, 'sleep', 'http://httpbin-mtls:8000/ip');
  t.equal(fromAmbient.status, 0);
  t.ok([52, 56].includes(fromAmbient.exit), `ambient -> hbone: false sidecar under STRICT: reset (curl exit ${fromAmbient.exit})`);
  t.equal(curl(NAME, 'sleep-sc', 'http://httpbin-mtls:8000/ip').status, 200, 'sidecar -> sidecar over Istio mTLS still passes');
  t.equal(lab(['delete', '--lab', NAME, '-f', file]).code, 0);
  t.ok(await waitFor(() => curl(NAME, 'sleep', 'http://httpbin-mtls:8000/ip').status === 200, 10_000, 'PERMISSIVE again', 200), 'PERMISSIVE again: the plaintext passes');
});

t.test('sc-l7: faults at the client sidecar, RBAC at the server sidecar, STRICT, L4 policy, live reload', async (t) => {
  const up = upJson('test/fixtures/topologies/sidecar-l7.yaml', L7);
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;

  // A VirtualService applies at a client sidecar (an ambient client has no waypoint for httpbin).
  const fault = curl(L7, 'sleep-sc', `-D - -H 'x-fault: abort' http://httpbin:8000/get`);
  t.equal(fault.status, 418, 'the client sidecar aborted with the VS status');
  t.match(fault.body, /fault filter abort$/);
  t.match(fault.body, /^server: envoy\r?$/m);
  t.equal(curl(L7, 'sleep', `-H 'x-fault: abort' http://httpbin:8000/get`).status, 200, 'an ambient client without a waypoint is not routed by the VS');
  const faultLog = logLines(L7, 'sidecar-default.sleep-sc').find((l) => l.msg === 'request' && l.status === 418);
  t.match(faultLog, { response_flags: 'FI', attempts: 0, route: 'VirtualService default/httpbin http[0] rule 0' });
  // A header route to another Service and a route timeout, both decided by the client sidecar.
  t.equal(curl(L7, 'sleep-sc', `-H 'x-route: strict' http://httpbin:8000/hostname`).body.trim(), 'strict-sc', 'the client sidecar routed httpbin to strict-sc');
  t.equal(curl(L7, 'sleep', `-H 'x-route: strict' http://httpbin:8000/hostname`).body.trim(), 'httpbin', 'an ambient client without a waypoint went to httpbin');
  const slow = curl(L7, 'sleep-sc', `-H 'x-timeout: short' http://httpbin:8000/delay/2`);
  t.equal(slow.status, 504, 'the client sidecar\'s route timeout');
  t.equal(slow.body, 'upstream request timeout');
  t.match(await waitFor(() => logLines(L7, 'sidecar-default.sleep-sc').find((l) => l.msg === 'request' && l.status === 504), 10_000, 'timeout log', 200),
    { response_flags: 'UT', route: 'VirtualService default/httpbin http[2] rule 2' });

  // GET-only at httpbin-sc's sidecar: the deny is its local reply, renamed envoy by a client sidecar.
  t.equal(curl(L7, 'sleep-sc', 'http://httpbin-sc:8000/get').status, 200);
  const post = curl(L7, 'sleep-sc', '-D - -X POST http://httpbin-sc:8000/post');
  t.equal(post.status, 403);
  t.match(post.body, /RBAC: access denied$/);
  const postAmbient = curl(L7, 'sleep', '-D - -X POST http://httpbin-sc:8000/post');
  t.equal(postAmbient.status, 403);
  t.match(postAmbient.body, /^server: istio-envoy\r?$/m, 'from an ambient client: the server sidecar\'s own server header');

  // STRICT: plaintext from a plain pod is reset; mesh clients (HBONE, sidecar) get through.
  const plain = curl(L7, 'sleep-plain', 'http://strict-sc:8000/get');
  t.equal(plain.status, 0);
  t.ok([52, 56].includes(plain.exit), `plaintext to a STRICT sidecar: connection reset (curl exit ${plain.exit})`);
  t.equal(curl(L7, 'sleep', 'http://strict-sc:8000/get').status, 200, 'ambient client over HBONE');
  t.equal(curl(L7, 'sleep-sc', 'http://strict-sc:8000/get').status, 200, 'sidecar client over HBONE');
  const strictLog = logLines(L7, 'sidecar-default.strict-sc').find((l) => l.msg === 'connection denied');
  t.match(strictLog, { policy: 'default/istio_converted_static_strict' });

  // L4 policy on a TCP port: only sleep-sc's identity.
  const echo = (pod: string) => lab(['exec', '--lab', L7, pod, '--', 'bash', '-c', 'exec 3<>/dev/tcp/echo-sc/9000; echo hello-sidecar >&3; read -t 5 line <&3; echo "$line"']).stdout.trim();
  t.equal(echo('sleep-sc'), 'hello-sidecar', 'sleep-sc reaches the TCP port');
  t.equal(echo('sleep'), '', 'sleep is refused');
  const echoLog = logLines(L7, 'sidecar-default.echo-sc');
  t.match(echoLog.find((l) => l.msg === 'connection denied'), { 'src.identity': spiffe('sleep'), status: 401, reason: /no ALLOW policy matched \(default\/echo-sc-from-sleep-sc\)/ },
    'over HBONE the deny is a 401 to the CONNECT');
  t.equal(echoLog.filter((l) => l.status === 401).length, 1, 'logged once');

  // lab apply: the sidecar reloads its rewritten config (file watch) without a restart.
  const dir = mkdtempSync(join(tmpdir(), 'alt-sc-apply-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'deny.yaml');
  writeFileSync(file, [
    'apiVersion: security.istio.io/v1beta1', 'kind: AuthorizationPolicy', 'metadata: {name: httpbin-sc-no-deny}',
    'spec:', '  selector: {matchLabels: {app: httpbin-sc}}', '  action: DENY', '  rules:', '    - to: [{operation: {paths: ["/deny*"]}}]', '',
  ].join('\n'));
  const applied = lab(['apply', '--lab', L7, '-f', file]);
  t.equal(applied.code, 0, `lab apply\n${applied.stderr}`);
  const status = await waitFor(() => {
    const s = curl(L7, 'sleep-sc', 'http://httpbin-sc:8000/deny-me').status;
    return s === 403 ? s : undefined;
  }, 10_000, 'the DENY policy to take effect', 200);
  t.equal(status, 403, 'the new DENY applies');
  t.equal(curl(L7, 'sleep-sc', 'http://httpbin-sc:8000/get').status, 200, 'the rest still passes');
  const reloaded = logLines(L7, 'sidecar-default.httpbin-sc').find((l) => l.msg === 'config reloaded');
  t.match(reloaded, { version: 2, trigger: 'file' });
});
