// h2c through the L7 server (proxy/l7-server.ts) and the real engine, over loopback: a client
// with HTTP/2 prior knowledge (Node's http2 client, as `curl --http2-prior-knowledge`) on a
// connection fed as the waypoint feeds it (a JS stream: through the duplex adapter). A raw
// socket (the sidecar's REDIRECTed 15001/15006) stays on Node's native HTTP/1.1 path. Checked: what the client gets (status, body, the route's
// upstream version, the RBAC 403) and what the upstream sees (HTTP/1.1, host = the
// authority, no pseudo-headers); an HTTP/1.1 request on the same server still works.
import t, { type Test } from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { captureLogger } from './capture-logger.js';
import { createL7Server, looksLikeH2c, H2_PREFACE } from '../../src/proxy/l7-server.js';
import { Refusals } from '../../src/proxy/refusals.js';
import { plainDuplex } from '../../src/mesh/duplex-adapter.js';
import { L7Engine, type DownstreamInfo } from '../../src/l7/engine.js';
import { seededRandom } from '../../src/l7/backends.js';
import type { HttpRouteRule } from '../../src/l7/model.js';
import type { L7RequestResult } from '../../src/l7/result.js';

const HOST = 'reviews.default.svc.cluster.local';
const AUTHORITY = 'reviews:9080';

interface Seen { version: string; httpVersion: string; method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

async function upstream(version: string, seen: Seen[]): Promise<http.Server> {
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ version, httpVersion: req.httpVersion, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      // Connection-specific fields an HTTP/1.1 app may send: the proxy must not pass them to an HTTP/2 client.
      res.writeHead(200, { 'x-version': version, connection: 'keep-alive', 'keep-alive': 'timeout=5' });
      res.end(`${version} ${req.method} ${body.length}`);
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

const rule = (r: Partial<HttpRouteRule> & { origin: string }): HttpRouteRule => ({ matches: [], backends: [{ host: HOST, weight: 100 }], ...r });

async function rig(t: Test, feed: 'tunnel' | 'socket') {
  const seen: Seen[] = [];
  const v1 = await upstream('v1', seen);
  const v2 = await upstream('v2', seen);
  const portOf = (s: http.Server): number => (s.address() as net.AddressInfo).port;
  const results: L7RequestResult[] = [];
  const engine = new L7Engine({
    config: {
      routes: [{
        host: HOST,
        origin: 'VirtualService default/reviews',
        rules: [
          rule({ origin: 'http[0]', matches: [{ headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }], backends: [{ host: HOST, subset: 'v2', weight: 100 }] }),
          rule({ origin: 'http[1]', backends: [{ host: HOST, subset: 'v1', weight: 100 }, { host: HOST, subset: 'v2', weight: 0 }] }),
        ],
      }],
      destinationPolicies: [{ host: HOST, origin: 'DestinationRule default/reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }],
      authorization: [{ name: 'deny-delete', namespace: 'default', origin: 'AuthorizationPolicy default/deny-delete', action: 'DENY', target: { waypoint: 'waypoint' }, rules: [{ to: [{ methods: ['DELETE'] }] }] }],
    },
    endpoints: (host) => host === HOST ? [v1, v2].map((s, i) => ({ address: '127.0.0.1', port: portOf(s), labels: { version: `v${i + 1}` } })) : [],
    connect: (ep) => new Promise((resolve, reject) => {
      const s = net.connect(ep.port, ep.address);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    }),
    random: seededRandom(7),
  });
  const info: DownstreamInfo = { service: { host: HOST, port: 9080 }, srcIp: '127.0.0.1', dstIp: '10.96.0.20', dstPort: 9080 };
  const { log } = captureLogger();
  const refusals = new Refusals();
  const l7 = createL7Server(engine, log, (r) => results.push(r), { refusals });
  const front = net.createServer({ allowHalfOpen: true }, (s) => l7.serve(feed === 'tunnel' ? plainDuplex(s) : s, info));
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const port = (front.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => undefined);
  t.teardown(async () => {
    client.close();
    await l7.close();
    await engine.close();
    front.close();
    for (const s of [v1, v2]) { s.close(); s.closeAllConnections(); }
  });
  const h2 = (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> =>
    new Promise((resolve, reject) => {
      const req = client.request({ ':method': method, ':path': path, ':authority': AUTHORITY, ...headers }, { endStream: body === undefined });
      let text = '';
      let head: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (head = h));
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: text }));
      req.on('error', reject);
      if (body !== undefined) req.end(body);
    });
  return { port, seen, results, h2, refusals };
}

t.test('the preface test', async (t) => {
  t.ok(looksLikeH2c(H2_PREFACE), 'the whole preface');
  t.ok(looksLikeH2c(H2_PREFACE.subarray(0, 5)), 'a first chunk cut inside it');
  t.notOk(looksLikeH2c(Buffer.from('GET / HTTP/1.1\r\n')), 'an HTTP/1.1 request line');
  t.notOk(looksLikeH2c(Buffer.from('POST / HTTP/1.1\r\n')), 'not a prefix of PRI');
  t.notOk(looksLikeH2c(Buffer.alloc(0)), 'nothing sent');
});

/** An HTTP/1.1 GET of /reviews/5 on the proxy's port. */
const h1Get = (port: number): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path: '/reviews/5', headers: { host: AUTHORITY }, agent: false }, (res) => {
    let text = '';
    res.on('data', (c: Buffer) => (text += c.toString()));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
  }).on('error', reject);
});

for (const feed of ['tunnel'] as const) {
  t.test('h2c prior knowledge through the engine (waypoint, or a sidecar\'s 15008: an HBONE tunnel)', async (t) => {
    const r = await rig(t, feed);

    const get = await r.h2('GET', '/reviews/1');
    t.equal(get.status, 200, 'GET 200');
    t.equal(get.body, 'v1 GET 0', 'the default rule: v1 (weight 100/0)');
    t.equal(get.headers.server, 'istio-envoy', 'the proxy answered');
    for (const h of ['connection', 'keep-alive', 'transfer-encoding']) t.notOk(h in get.headers, `no ${h} on the HTTP/2 response`);
    const up = r.seen.at(-1)!;
    t.equal(up.httpVersion, '1.1', 'the upstream sees HTTP/1.1');
    t.equal(up.headers.host, AUTHORITY, 'host = the :authority');
    t.same(Object.keys(up.headers).filter((k) => k.startsWith(':')), [], 'no pseudo-headers upstream');
    t.equal(up.url, '/reviews/1');
    t.equal(r.results.at(-1)!.authority, AUTHORITY, 'the access log has the authority');

    const body = 'x'.repeat(100_000);
    const post = await r.h2('POST', '/reviews/2', { 'content-type': 'text/plain' }, body);
    t.equal(post.status, 200, 'POST 200');
    t.equal(post.body, `v1 POST ${body.length}`, 'the whole body reached the upstream');
    t.equal(r.seen.at(-1)!.body, body);

    const jason = await r.h2('GET', '/reviews/3', { 'end-user': 'jason' });
    t.equal(jason.body, 'v2 GET 0', 'the header route sends end-user: jason to v2');
    t.equal(r.seen.at(-1)!.headers['end-user'], 'jason');

    const before = r.seen.length;
    const denied = await r.h2('DELETE', '/reviews/4');
    t.equal(denied.status, 403, 'DELETE denied');
    t.equal(denied.body, 'RBAC: access denied');
    t.equal(r.seen.length, before, 'the upstream never saw it');

    // HTTP/1.1 on the same server.
    const h1 = await h1Get(r.port);
    t.equal(h1.status, 200, 'HTTP/1.1 still served');
    t.equal(h1.body, 'v1 GET 0');
    t.equal(r.seen.at(-1)!.headers.host, AUTHORITY);
  });
}

t.test('a raw socket (the sidecar\'s 15001/15006) is HTTP/1.1 on Node\'s native parser: served, and h2c refused', async (t) => {
  const r = await rig(t, 'socket');
  const h1 = await h1Get(r.port);
  t.equal(h1.status, 200, 'HTTP/1.1 served');
  t.equal(h1.body, 'v1 GET 0');
  const sock = net.connect(r.port, '127.0.0.1');
  sock.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  let answer = '';
  sock.on('data', (d: Buffer) => (answer += d.toString()));
  await once(sock, 'close');
  t.match(answer, /^HTTP\/1\.1 400 /, 'the HTTP/2 preface gets HTTP/1.1 400 there');
});

t.test('h2c header count: 100 fields served, 101 refused with 431 and counted as HTTP/1.1 is', async (t) => {
  const r = await rig(t, 'tunnel');
  const fields = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-${i}`, 'v']));
  t.equal((await r.h2('GET', '/reviews/1', fields(100))).status, 200, '100 header fields (plus the pseudo-headers) served');
  const over = await r.h2('GET', '/reviews/1', fields(101));
  t.equal(over.status, 431, '101 header fields: 431');
  t.equal(r.refusals.value('http', 'header_count'), 1, 'counted under lab_refused_total{listener="http",reason="header_count"}');
});
