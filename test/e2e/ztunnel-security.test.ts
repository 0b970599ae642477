// HBONE is real mTLS and L4 policy is enforced at the destination ztunnel, as seen by clients.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { lab, curlIn, upJson, podIp, sh, REPO } from './helpers.js';

const NAME = 'e2e-pol';
const tmp = mkdtempSync('/tmp/e2e-pol-');
t.teardown(() => { lab(['down', NAME]); rmSync(tmp, { recursive: true, force: true }); });

const up = upJson('test/fixtures/topologies/policy.yaml', NAME);
const s = up.summary;

function issue(caCert: string, caKey: string, name: string, sa: string): [string, string] {
  const key = `${tmp}/${name}.key`;
  const cert = `${tmp}/${name}.pem`;
  sh(`openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${key} -subj /O=test -out ${tmp}/${name}.csr 2>&1`);
  sh(`printf 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/${sa}\\nextendedKeyUsage=clientAuth,serverAuth\\n' > ${tmp}/${name}.ext`);
  sh(`openssl x509 -req -in ${tmp}/${name}.csr -CA ${caCert} -CAkey ${caKey} -CAcreateserial -days 1 -extfile ${tmp}/${name}.ext -out ${cert} 2>&1`);
  return [cert, key];
}

function probe(args: string[]): any {
  const r = lab(['exec', '--lab', NAME, 'plain', '--', process.execPath, `${REPO}/test/fixtures/hbone-probe.mjs`, ...args]);
  try { return JSON.parse(r.stdout.trim().split('\n').pop() ?? ''); } catch { return { raw: r.stdout + r.stderr }; }
}

t.test('lab up', async (t) => { t.ok(up.ok, up.stderr); });

t.test('HBONE port 15008 is mutual TLS with the lab CA', async (t) => {
  const httpbin = podIp(s, 'default/httpbin');
  const caDir = `/run/ambient-lab/${NAME}/ca`;
  const [lc, lk] = issue(`${caDir}/ca.pem`, `${caDir}/ca-key.pem`, 'lab', 'plain');
  sh(`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${tmp}/fca.key -out ${tmp}/fca.pem -subj /CN=foreign -days 1 2>&1`);
  const [fc, fk] = issue(`${tmp}/fca.pem`, `${tmp}/fca.key`, 'foreign', 'plain');

  const ok = probe([`${httpbin}:15008`, `${httpbin}:80`, lc, lk]);
  t.equal(ok.status, 200, `a lab-CA client gets 200 for the right authority (${JSON.stringify(ok)})`);
  t.match(ok.peer ?? '', 'spiffe://cluster.local/ns/default/sa/httpbin', 'the server presents httpbin\'s identity');
  const bad = probe([`${httpbin}:15008`, `10.244.1.250:80`, lc, lk]);
  t.equal(bad.status, 400, `an authority that is not the original destination gets 400 (${JSON.stringify(bad)})`);
  const foreign = probe([`${httpbin}:15008`, `${httpbin}:80`, fc, fk]);
  t.not(foreign.status, 200, `a client cert from another CA is refused (${JSON.stringify(foreign)})`);
  t.ok(foreign.error, 'the handshake or session fails');
  const nocert = probe([`${httpbin}:15008`, `${httpbin}:80`]);
  t.not(nocert.status, 200, `no client cert is refused (${JSON.stringify(nocert)})`);
  const plain = probe([`${httpbin}:15008`, `${httpbin}:80`, '--plaintext']);
  t.not(plain.status, 200, `plaintext HTTP/2 to 15008 is refused (${JSON.stringify(plain)})`);
});

t.test('L4 AuthorizationPolicy: DENY blocks, ALLOW admits, as curl sees it', async (t) => {
  const denied = curlIn(NAME, 'sleep', 'http://httpbin:8000/ip');
  t.not(denied.code, 0, 'sleep -> httpbin is denied (curl fails)');
  const other = curlIn(NAME, 'sleep-b', 'http://httpbin:8000/ip');
  t.same(JSON.parse(other.stdout || '{}'), { origin: podIp(s, 'default/sleep-b') }, 'sleep-b -> httpbin is allowed');
  const allowed = curlIn(NAME, 'sleep-b', 'http://httpbin2:8000/ip');
  t.same(JSON.parse(allowed.stdout || '{}'), { origin: podIp(s, 'default/sleep-b') }, 'ALLOW admits sleep-b -> httpbin2');
  const notAllowed = curlIn(NAME, 'sleep', 'http://httpbin2:8000/ip');
  t.not(notAllowed.code, 0, 'ALLOW policy without a match denies sleep -> httpbin2');
  const metrics = sh(`ip netns exec al-${NAME}-pod-istio-system.ztunnel-node-b curl -s --max-time 5 http://127.0.0.1:15020/metrics`);
  t.match(metrics, /istio_tcp_connections_opened_total/, 'metrics are exported');
});
