// HBONE on loopback: mTLS CONNECT end to end through the mesh server and pooled client,
// refusals at the TLS layer, the protocol-level status codes, pooling and throughput.
import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import http2 from 'node:http2';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabCa, issueWorkloadCert, type LabCa } from '../../src/mesh/ca.js';
import { meshTlsFromCa, type MeshTls } from '../../src/mesh/tls.js';
import { createHboneServer, type HboneRefusal, type HboneRequest, type HboneServer } from '../../src/mesh/hbone-server.js';
import { HbonePool } from '../../src/mesh/pool.js';
import { HboneError, openHboneSession, hboneConnect } from '../../src/mesh/hbone-client.js';
import { copyBidirectional } from '../../src/mesh/copy.js';
import { openKeyLog } from '../../src/mesh/keylog.js';
import { parseSpiffe, type SpiffeId } from '../../src/mesh/identity.js';

const id = (ns: string, sa: string, td = 'cluster.local'): SpiffeId => ({ trustDomain: td, namespace: ns, serviceAccount: sa });
const CLIENT = id('default', 'sleep');
const SERVER = id('default', 'httpbin');
const DST_IP = '10.244.1.5'; // the "pod" the HBONE connection was addressed to (injected original dst)

const listen = (srv: net.Server): Promise<number> =>
  new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));

/** TCP echo that also half-closes when the client does, so half-close propagation is visible. */
function echoServer(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
}

/** Reads everything until the stream ends. */
function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((res, rej) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => res(Buffer.concat(parts)));
    s.on('error', rej);
  });
}

interface Rig {
  ca: LabCa;
  mesh: MeshTls;
  server: HboneServer;
  hbonePort: number;
  echoPort: number;
  pool: HbonePool;
  requests: HboneRequest[];
  refusals: HboneRefusal[];
}

/** One HBONE server on loopback that pretends to be `DST_IP`, forwarding DST_IP:<port> to 127.0.0.1:<echoPort>. */
async function rig(t: Test, opts: { deny?: (r: HboneRequest) => boolean; keyLogFile?: string } = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'alt-mesh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createLabCa(join(dir, 'ca'), { lab: 'test' });
  const keyLog = opts.keyLogFile ? openKeyLog(opts.keyLogFile) : undefined;
  const mesh = meshTlsFromCa(ca, keyLog);
  const echo = echoServer();
  const echoPort = await listen(echo);
  const requests: HboneRequest[] = [];
  const refusals: HboneRefusal[] = [];
  const server = createHboneServer({
    tls: mesh,
    onRefused: (x) => refusals.push(x),
    identityFor: (ip) => (ip === DST_IP ? SERVER : undefined),
    onRequest(req) {
      requests.push(req);
      if (opts.deny?.(req)) return req.reject(401, 'denied');
      if (req.target.port === 1) return req.reject(404, 'unknown');
      const up = net.connect({ host: '127.0.0.1', port: req.target.port === 7 ? echoPort : req.target.port });
      up.once('error', () => req.reject(503, 'connect failed'));
      up.once('connect', () => void copyBidirectional(req.accept(), up));
    },
  });
  const front = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => server.handle(s, { ip: DST_IP, port: 15008 }));
  const hbonePort = await listen(front);
  const pool = new HbonePool({ tls: mesh, dial: () => net.connect({ host: '127.0.0.1', port: hbonePort }) });
  t.teardown(() => {
    pool.close();
    server.close();
    front.close();
    echo.close();
    keyLog?.close();
  });
  return { ca, mesh, server, hbonePort, echoPort, pool, requests, refusals };
}

const key = { source: CLIENT, expected: SERVER, address: { ip: DST_IP, port: 15008 } };

/** Polls until `pred` holds; session teardown and idle timers finish after the stream does. */
async function waitFor(what: string, pred: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('mTLS CONNECT carries bytes both ways and propagates half-close', async (t) => {
  const r = await rig(t);
  const { stream } = await r.pool.connect(key, `${DST_IP}:7`, { baggage: 'k8s.namespace.name=default', forwardedFor: '10.244.0.9' });
  const reply = readAll(stream);
  stream.end('hello through hbone');
  t.equal((await reply).toString(), 'hello through hbone', 'echoed bytes come back, then the stream ends');
  const req = r.requests[0];
  t.same(req.peer.identity, CLIENT, 'server sees the client SPIFFE identity');
  t.same(req.target, { ip: DST_IP, port: 7 });
  t.equal(req.forwardedFor, '10.244.0.9');
  t.equal(req.headers.baggage, 'k8s.namespace.name=default');
  t.match(String(req.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
});

t.test('the session runs on AES-256-GCM, as a ztunnel pair negotiates (never ChaCha20)', async (t) => {
  const r = await rig(t);
  const { stream } = await r.pool.connect(key, `${DST_IP}:7`);
  const sock = stream.session!.socket as tls.TLSSocket;
  t.equal(sock.getCipher().standardName, 'TLS_AES_256_GCM_SHA384');
  stream.end();
  // A client that offers only ChaCha20 finds nothing in common with the mesh server.
  const chacha = tls.connect({ host: '127.0.0.1', port: r.hbonePort, ALPNProtocols: ['h2'], rejectUnauthorized: false, ciphers: 'TLS_CHACHA20_POLY1305_SHA256', minVersion: 'TLSv1.3' });
  const outcome = await new Promise<string>((res) => {
    chacha.once('error', (e) => res(`refused: ${e.message}`));
    chacha.once('secureConnect', () => res(`connected with ${chacha.getCipher().standardName}`));
  });
  chacha.destroy();
  t.match(outcome, /^refused: .*(handshake failure|no shared cipher|alert)/i, outcome);
});

t.test('the client refuses a server that is not the expected identity', async (t) => {
  const r = await rig(t);
  await t.rejects(r.pool.connect({ ...key, expected: id('default', 'someone-else') }, `${DST_IP}:7`), { code: 'ERR_HBONE_IDENTITY' });
});

t.test('a client cert from another CA is refused', async (t) => {
  const r = await rig(t);
  const { refusals } = r;
  const dir = mkdtempSync(join(tmpdir(), 'alt-mesh-other-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const other = await createLabCa(dir, { lab: 'other' });
  // Trust the real server's CA, but present a cert signed by a foreign CA.
  const rogue: MeshTls = { caPem: r.ca.certPem, certFor: (i) => issueWorkloadCert(other, i) };
  // TLS 1.3: the client's handshake completes before the server has judged its certificate;
  // the server's verdict is a TCP reset (it cannot send BoringSSL's alert from Node).
  const session = await openHboneSession({ tls: rogue, socket: net.connect({ host: '127.0.0.1', port: r.hbonePort }), source: CLIENT, expected: SERVER });
  t.teardown(() => session.destroy());
  await t.rejects(hboneConnect(session, `${DST_IP}:7`), { code: 'ECONNRESET' }, 'the CONNECT dies with a reset');
  t.equal(r.requests.length, 0, 'no request reached the handler');
  t.equal(r.server.stats.refused, 1, 'server counted one refusal');
  t.match(refusals, [{ reason: 'peer certificate not issued by the mesh CA' }], 'and says why');
});

t.test('a client from another trust domain is refused', async (t) => {
  const r = await rig(t);
  const session = await openHboneSession({ tls: r.mesh, socket: net.connect({ host: '127.0.0.1', port: r.hbonePort }), source: id('default', 'sleep', 'evil.local'), expected: SERVER });
  t.teardown(() => session.destroy());
  await t.rejects(hboneConnect(session, `${DST_IP}:7`), { code: 'ECONNRESET' });
  t.equal(r.requests.length, 0);
  t.match(r.refusals, [{ reason: 'client trust domain evil.local != cluster.local' }]);
});

t.test('plaintext to the HBONE port is refused', async (t) => {
  const r = await rig(t);
  const s = net.connect({ host: '127.0.0.1', port: r.hbonePort });
  s.on('error', () => undefined);
  s.write('CONNECT 10.244.1.5:7 HTTP/1.1\r\nHost: 10.244.1.5:7\r\n\r\n');
  const got = await readAll(s).catch(() => Buffer.alloc(0));
  t.notOk(got.toString().includes('200'), 'no 200 for plaintext');
  t.equal(r.requests.length, 0);
});

t.test('a TLS client without a certificate is refused', async (t) => {
  const r = await rig(t);
  const s = tls.connect({ host: '127.0.0.1', port: r.hbonePort, ca: r.ca.certPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
  const outcome = await new Promise<string>((res) => {
    s.once('error', (e) => res(`error ${e.message}`));
    s.once('close', () => res('closed'));
    s.once('secureConnect', () => {
      // TLS 1.3: the server's verdict on our (missing) cert arrives after our Finished.
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    });
  });
  t.match(outcome, /^error .*alert certificate required/i, 'TLS alert: certificate required');
  t.equal(r.requests.length, 0);
});

t.test('TLS 1.2 and a missing ALPN are refused', async (t) => {
  const r = await rig(t);
  const cert = await issueWorkloadCert(r.ca, CLIENT);
  const attempt = (o: tls.ConnectionOptions): Promise<string> => new Promise((res) => {
    const s = tls.connect({ host: '127.0.0.1', port: r.hbonePort, ca: r.ca.certPem, cert: cert.certPem, key: cert.keyPem, checkServerIdentity: () => undefined, ...o });
    s.once('error', (e) => res(`error ${e.message}`));
    s.once('secureConnect', () => {
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      s.once('close', () => res('closed after handshake'));
      s.resume(); // a FIN is seen ('end', then 'close') only once what came before it is read

    });
  });
  t.match(await attempt({ maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] }), /^error .*(protocol version|version)/i, 'TLS 1.2 handshake fails');
  t.match(await attempt({ ALPNProtocols: ['http/1.1'] }), /error|closed/, 'no h2 ALPN: refused');
  t.equal(r.requests.length, 0);
});

t.test('status codes: 400 authority mismatch/unparsable, 404 not CONNECT, 401, 503', async (t) => {
  const r = await rig(t, { deny: (req) => req.target.port === 401 });
  const status = (authority: string) => r.pool.connect(key, authority).then(() => 200, (e: HboneError) => e.status);
  t.equal(await status('10.9.9.9:7'), 400, 'authority IP != original dst');
  t.equal(await status('not-an-ip'), 400, 'unparsable authority');
  t.equal(await status(`${DST_IP}:401`), 401, 'RBAC deny');
  t.equal(await status(`${DST_IP}:1`), 404, 'unknown destination');
  const dead = net.createServer();
  const deadPort = await listen(dead);
  await new Promise((res) => dead.close(res));
  t.equal(await status(`${DST_IP}:${deadPort}`), 503, 'target down');
  // Not CONNECT: a GET on the same mTLS session.
  const session = await openHboneSession({ tls: r.mesh, socket: net.connect({ host: '127.0.0.1', port: r.hbonePort }), source: CLIENT, expected: SERVER });
  t.teardown(() => session.destroy());
  const get = session.request({ ':method': 'GET', ':path': '/', ':authority': `${DST_IP}:7` });
  const code = await new Promise((res) => get.once('response', (h) => res(h[':status'])));
  t.equal(code, 404, 'GET -> 404');
  t.equal(r.server.stats.handshakes, 2, 'all the CONNECTs above shared one pooled session (+1 for the GET session)');
});

t.test('pooling: sequential CONNECTs reuse one TLS session and get cheaper', async (t) => {
  const r = await rig(t);
  const N = 50;
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const { stream } = await r.pool.connect(key, `${DST_IP}:7`);
    const reply = readAll(stream);
    stream.end('x');
    await reply;
    return performance.now() - t0;
  };
  const first = await once();
  const pooled: number[] = [];
  for (let i = 0; i < N; i++) pooled.push(await once());
  pooled.sort((a, b) => a - b);
  const median = pooled[N >> 1];
  t.equal(r.server.stats.handshakes, 1, `${N + 1} CONNECTs, one TLS handshake`);
  t.equal(r.pool.stats.sessionsOpened, 1);
  t.equal(r.pool.stats.reused, N);
  t.ok(median < first, `pooled request (${median.toFixed(2)} ms median) is cheaper than the first (${first.toFixed(2)} ms)`);
  // Fresh sessions, for comparison: a new pool per request.
  const fresh: number[] = [];
  for (let i = 0; i < 10; i++) {
    const p = new HbonePool({ tls: r.mesh, dial: () => net.connect({ host: '127.0.0.1', port: r.hbonePort }) });
    const t0 = performance.now();
    const { stream } = await p.connect(key, `${DST_IP}:7`);
    const reply = readAll(stream);
    stream.end('x');
    await reply;
    fresh.push(performance.now() - t0);
    p.close();
  }
  fresh.sort((a, b) => a - b);
  t.comment(`HBONE request: fresh session ${fresh[5].toFixed(2)} ms (median of 10), pooled stream ${median.toFixed(2)} ms (median of ${N})`);
  t.ok(median < fresh[5], 'pooled < fresh');
});

t.test('a closed session is evicted and replaced', async (t) => {
  const r = await rig(t);
  const { stream } = await r.pool.connect(key, `${DST_IP}:7`);
  stream.end();
  await readAll(stream);
  t.equal(r.pool.size, 1);
  r.server.close(); // drops every server-side socket: the client session sees the close
  await waitFor('dead session evicted', () => r.pool.size === 0);
  t.equal(r.pool.size, 0, 'dead session evicted');
  const again = await r.pool.connect(key, `${DST_IP}:7`);
  again.stream.end();
  await readAll(again.stream);
  t.equal(r.pool.stats.sessionsOpened, 2);
});

t.test('idle sessions are closed after the idle timeout', async (t) => {
  const r = await rig(t);
  const pool = new HbonePool({ tls: r.mesh, idleTimeoutMs: 100, dial: () => net.connect({ host: '127.0.0.1', port: r.hbonePort }) });
  t.teardown(() => pool.close());
  const { stream } = await pool.connect(key, `${DST_IP}:7`);
  stream.end();
  await readAll(stream);
  t.equal(pool.size, 1);
  const t0 = Date.now();
  await waitFor('idle session closed', () => pool.size === 0);
  t.equal(pool.size, 0, 'idle session gone');
  t.ok(Date.now() - t0 >= 90, 'not before the idle timeout');
});

t.test('TLS key log lines are written in SSLKEYLOGFILE format', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-mesh-kl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys.log');
  const r = await rig(t, { keyLogFile: file });
  const { stream } = await r.pool.connect(key, `${DST_IP}:7`);
  stream.end();
  await readAll(stream);
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  t.ok(lines.some((l) => /^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]+$/.test(l)));
  t.ok(lines.some((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 ')));
});

t.test('certificates: URI SAN, 24h lifetime, cached per identity', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-mesh-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createLabCa(dir, { lab: 'demo' });
  t.match(ca.cert.subject, /CN=ambient-lab CA demo/);
  t.equal((await import('node:fs')).statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
  const a = await issueWorkloadCert(ca, CLIENT);
  const b = await issueWorkloadCert(ca, CLIENT);
  t.equal(a, b, 'same identity -> cached cert');
  const x = new (await import('node:crypto')).X509Certificate(a.certPem);
  t.equal(x.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/sleep');
  const life = new Date(x.validTo).getTime() - new Date(x.validFrom).getTime();
  t.ok(life >= 24 * 3600_000 && life <= 25 * 3600_000, 'about 24h');
  t.ok(x.checkIssued(new (await import('node:crypto')).X509Certificate(ca.certPem)));
  t.same(parseSpiffe('spiffe://cluster.local/ns/default/sa/sleep'), CLIENT);
  const again = await (await import('../../src/mesh/ca.js')).loadLabCa(dir);
  t.equal(again.certPem, ca.certPem, 'loadLabCa reads the same root');
});

t.test('throughput: 1 GiB through one CONNECT stream', async (t) => {
  const r = await rig(t);
  // A sink target: counts bytes, replies with the count when the client half-closes.
  const sink = net.createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(String(n)));
  });
  const sinkPort = await listen(sink);
  t.teardown(() => sink.close());
  const { stream } = await r.pool.connect(key, `${DST_IP}:${sinkPort}`);
  const total = 1 << 30;
  const chunk = Buffer.alloc(1 << 20, 0x61);
  const t0 = performance.now();
  const reply = readAll(stream);
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!stream.write(chunk)) await new Promise((res) => stream.once('drain', res));
  }
  stream.end();
  const got = Number((await reply).toString());
  const secs = (performance.now() - t0) / 1000;
  const gbps = (total * 8) / secs / 1e9;
  t.equal(got, total, 'target received every byte');
  t.comment(`1 GiB through one HBONE CONNECT on loopback: ${secs.toFixed(2)} s = ${gbps.toFixed(2)} Gbit/s`);
  t.ok(gbps > 0.5, `throughput ${gbps.toFixed(2)} Gbit/s`);
});
