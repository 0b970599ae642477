// The L7 engine end to end on loopback: an in-process HTTP server plays the proxy (its handler
// is L7Engine.handle), loopback HTTP servers play the endpoints (each tagged with its version
// and counting what it saw), and connect() hands the engine a plain TCP socket to them, as the
// sidecar will. Every check is what a client or an upstream sees: status, body, headers,
// attempts counted by the upstream, elapsed time, and the result handed to onResult.
import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { L7Engine, type DownstreamInfo, type L7Config } from '../../src/l7/engine.js';
import { seededRandom, type L7Endpoint } from '../../src/l7/backends.js';
import { DEFAULT_RETRY_POLICY, type HttpRouteRule, type L7AuthorizationPolicy, type ServiceRoutes } from '../../src/l7/model.js';
import type { L7RequestResult } from '../../src/l7/result.js';

const HOST = 'reviews.default.svc.cluster.local';
const PORT = 9080;

interface Upstream {
  version: string;
  port: number;
  server: http.Server;
  /** Requests seen, by path without query. */
  seen: Map<string, number>;
  last?: { url: string; headers: http.IncomingHttpHeaders };
}

/** An httpbin-like endpoint: /reset (closes the connection), /status/N, /delay/ms, /echo, /bytes/n, /upload, /flaky/N (503 for the first N tries). */
async function startUpstream(version: string): Promise<Upstream> {
  const seen = new Map<string, number>();
  const u: Upstream = { version, port: 0, server: http.createServer(), seen };
  u.server.on('request', (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    u.last = { url: req.url ?? '', headers: req.headers };
    res.setHeader('x-version', version);
    res.setHeader('server', 'upstream-server');
    const [, verb, arg] = path.split('/');
    if (verb === 'reset') {
      req.socket.destroy();
    } else if (verb === 'status') {
      res.writeHead(Number(arg));
      res.end(`status ${arg}`);
    } else if (verb === 'delay') {
      const timer = setTimeout(() => res.end('late'), Number(arg));
      res.on('close', () => clearTimeout(timer));
    } else if (verb === 'bytes') {
      // Stream n deterministic bytes in 64 KiB chunks, respecting backpressure.
      let left = Number(arg);
      const chunk = Buffer.alloc(65536, 7);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = (): void => {
        while (left > 0) {
          const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= c.length;
          if (!res.write(c)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (verb === 'upload' || verb === 'flaky') {
      const hash = createHash('sha256');
      let len = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        len += c.length;
      });
      req.on('end', () => {
        if (verb === 'flaky' && n <= Number(arg)) {
          res.writeHead(503);
          res.end('not yet');
          return;
        }
        res.setHeader('x-upstream-secret', 'hide-me');
        res.end(JSON.stringify({ len, sha256: hash.digest('hex'), try: n }));
      });
    } else {
      res.setHeader('x-upstream-secret', 'hide-me');
      res.end(JSON.stringify({ version, url: req.url, headers: req.headers }));
    }
  });
  u.server.listen(0, '127.0.0.1');
  await once(u.server, 'listening');
  u.port = (u.server.address() as net.AddressInfo).port;
  return u;
}

/** A port with nothing listening: connect() to it fails with ECONNREFUSED. */
async function closedPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

const rule = (r: Partial<HttpRouteRule> & { origin: string }): HttpRouteRule => ({ matches: [], backends: [{ host: HOST, weight: 100 }], ...r });

t.test('engine over loopback', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const refused = await closedPort();
  const upstreams = [v1, v2];
  const endpoints = (host: string): L7Endpoint[] => {
    if (host === HOST) return upstreams.map((u) => ({ address: '127.0.0.1', port: u.port, labels: { app: 'reviews', version: u.version } }));
    if (host === 'dead.default.svc.cluster.local') return [{ address: '127.0.0.1', port: refused, labels: {} }];
    return [];
  };
  const VS = 'VirtualService default/reviews';
  const routes: ServiceRoutes[] = [
    {
      host: HOST,
      origin: VS,
      rules: [
        rule({ origin: `${VS} http[0]`, matches: [{ headers: [{ name: 'end-user', kind: 'Exact', value: 'jason' }] }], backends: [{ host: HOST, subset: 'v2', weight: 100 }] }),
        rule({ origin: `${VS} http[1]`, matches: [{ path: { kind: 'PathPrefix', value: '/split' } }], backends: [{ host: HOST, subset: 'v1', weight: 90 }, { host: HOST, subset: 'v2', weight: 10 }] }),
        rule({ origin: `${VS} http[2]`, matches: [{ path: { kind: 'Prefix', value: '/status/503' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], retries: { attempts: 2, retryOn: ['retriable-status-codes'], retriableStatusCodes: [503] } }),
        rule({ origin: `${VS} http[3]`, matches: [{ path: { kind: 'Prefix', value: '/flaky' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], retries: { attempts: 2, retryOn: ['5xx'], retriableStatusCodes: [] } }),
        rule({ origin: `${VS} http[4]`, matches: [{ path: { kind: 'Prefix', value: '/delay/2000' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], timeoutMs: 300 }),
        rule({ origin: `${VS} http[5]`, matches: [{ path: { kind: 'Prefix', value: '/delay/1000' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], retries: { attempts: 2, perTryTimeoutMs: 150, retryOn: ['5xx'], retriableStatusCodes: [] } }),
        rule({ origin: `${VS} http[6]`, matches: [{ path: { kind: 'Exact', value: '/abort' } }], fault: { abort: { httpStatus: 418, percentage: 100 } } }),
        rule({ origin: `${VS} http[7]`, matches: [{ path: { kind: 'Prefix', value: '/slow' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], fault: { delay: { fixedDelayMs: 300, percentage: 100 } }, rewrite: { path: '/echo' } }),
        rule({ origin: `${VS} http[8]`, matches: [{ path: { kind: 'PathPrefix', value: '/old' } }], backends: [], redirect: { prefixPath: '/new', statusCode: 301 } }),
        rule({ origin: `${VS} http[9]`, matches: [{ path: { kind: 'PathPrefix', value: '/api' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], rewrite: { prefixPath: '/v1', hostname: 'reviews.internal' } }),
        rule({
          origin: `${VS} http[10]`,
          matches: [{ path: { kind: 'Prefix', value: '/headers' } }],
          backends: [{ host: HOST, subset: 'v1', weight: 100 }],
          requestHeaders: { set: { 'x-set': 'yes' }, add: { 'x-multi': 'added' }, remove: ['x-drop-me'] },
          responseHeaders: { set: { 'x-resp': 'set' }, remove: ['x-upstream-secret'] },
        }),
        rule({ origin: `${VS} http[11]`, matches: [{ path: { kind: 'Prefix', value: '/upload' } }, { path: { kind: 'Prefix', value: '/bytes' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], retries: { attempts: 2, retryOn: ['5xx'], retriableStatusCodes: [] } }),
        rule({ origin: `${VS} http[12]`, matches: [{ path: { kind: 'Prefix', value: '/empty' } }], backends: [{ host: 'nowhere.default.svc.cluster.local', weight: 100 }] }),
        rule({ origin: `${VS} http[13]`, matches: [{ path: { kind: 'Prefix', value: '/dead' } }], backends: [{ host: 'dead.default.svc.cluster.local', weight: 100 }], retries: { attempts: 2, retryOn: ['connect-failure'], retriableStatusCodes: [] } }),
        rule({ origin: `${VS} http[14]`, matches: [{ path: { kind: 'Prefix', value: '/nosubset' } }], backends: [{ host: HOST, subset: 'v9', weight: 100 }] }),
        rule({ origin: `${VS} http[15]`, matches: [{ path: { kind: 'Prefix', value: '/echo' } }, { path: { kind: 'Prefix', value: '/status' } }, { path: { kind: 'Prefix', value: '/delay/5000' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }] }),
        rule({ origin: `${VS} http[16]`, matches: [{ path: { kind: 'Exact', value: '/reset' } }], backends: [{ host: HOST, subset: 'v1', weight: 100 }], retries: { attempts: 1, retryOn: ['reset'], retriableStatusCodes: [] } }),
      ],
    },
  ];
  const denyDelete: L7AuthorizationPolicy = {
    name: 'deny-delete',
    namespace: 'default',
    origin: 'AuthorizationPolicy default/deny-delete',
    action: 'DENY',
    target: { waypoint: 'waypoint' },
    rules: [{ to: [{ methods: ['DELETE'] }] }],
  };
  const config: L7Config = {
    routes,
    destinationPolicies: [{ host: HOST, origin: 'DestinationRule default/reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }],
    authorization: [denyDelete],
  };
  const results: L7RequestResult[] = [];
  const engine = new L7Engine({
    config,
    endpoints,
    connect: (ep) =>
      new Promise((resolve, reject) => {
        const s = net.connect(ep.port, ep.address);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
    onResult: (r) => results.push(r),
    random: seededRandom(1234),
  });
  const info: DownstreamInfo = { service: { host: HOST, port: PORT }, srcIp: '127.0.0.1', srcPrincipal: 'cluster.local/ns/default/sa/sleep', srcNamespace: 'default', dstIp: '10.96.0.20', dstPort: PORT };
  const proxy = http.createServer((req, res) => void engine.handle(req, res, info));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const base = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const client = new Agent({ connections: 8 });
  t.teardown(async () => {
    await client.close();
    await engine.close();
    proxy.close();
    v1.server.close();
    v2.server.close();
    proxy.closeAllConnections();
    v1.server.closeAllConnections();
    v2.server.closeAllConnections();
  });

  type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: string; ms: number; result: L7RequestResult };
  const call = async (path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> => {
    const before = results.length;
    const t0 = performance.now();
    const r = await request(`${base}${path}`, { dispatcher: client, method: (opts.method ?? 'GET') as never, headers: opts.headers, body: opts.body });
    const body = await r.body.text();
    const ms = performance.now() - t0;
    // onResult fires once the response is complete, which may trail the client's last byte.
    while (results.length === before) await new Promise((resolve) => setImmediate(resolve));
    return { status: r.statusCode, headers: r.headers, body, ms, result: results[results.length - 1] };
  };

  t.test('weighted split 90/10 over 400 requests', async (t) => {
    const hits = { v1: 0, v2: 0 } as Record<string, number>;
    for (let i = 0; i < 400; i++) {
      const r = await call('/split');
      t.equal(r.status, 200);
      hits[r.headers['x-version'] as string]++;
    }
    t.ok(hits.v2 >= 400 * 0.06 && hits.v2 <= 400 * 0.14, `v2 got ${hits.v2}/400 (10% +- 4 points)`);
    t.equal(hits.v1 + hits.v2, 400);
    const last = results[results.length - 1];
    t.equal(last.route && last.route.origin, `${VS} http[1]`);
    t.equal(last.route && last.route.index, 1);
    t.ok(last.backend?.weightPercent === 90 || last.backend?.weightPercent === 10, 'backend weight in the result');
  });

  t.test('header and path matches', async (t) => {
    const jason = await call('/echo', { headers: { 'end-user': 'jason' } });
    t.equal(jason.headers['x-version'], 'v2', 'end-user: jason -> v2');
    t.equal(jason.result.route?.index, 0);
    const anon = await call('/echo');
    t.equal(anon.headers['x-version'], 'v1', 'no header -> v1 by path');
    t.equal(anon.result.route?.index, 15);
    t.equal(anon.result.upstreamHost, `127.0.0.1:${v1.port}`);
    t.equal(anon.result.backend?.subset, 'v1');
    t.equal(anon.result.upstreamCluster, `outbound|${PORT}|v1|${HOST}`);
    t.equal(anon.result.responseFlags, '-');
    t.equal(anon.result.responseCodeDetails, 'via_upstream');
  });

  t.test('no route: 404 NR, nothing sent upstream', async (t) => {
    const before = v1.seen.get('/nothing') ?? 0;
    const r = await call('/nothing');
    t.equal(r.status, 404);
    t.equal(r.body, '');
    t.equal(r.result.responseFlags, 'NR');
    t.equal(v1.seen.get('/nothing') ?? 0, before);
  });

  t.test('retries: retryOn 503, attempts 2 -> 3 tries, then URX', async (t) => {
    const before = v1.seen.get('/status/503') ?? 0;
    const r = await call('/status/503');
    t.equal(r.status, 503);
    t.equal(r.body, 'status 503', 'the last upstream answer is forwarded');
    t.equal((v1.seen.get('/status/503') ?? 0) - before, 3, 'the upstream saw 3 tries');
    t.equal(r.result.attempts, 3);
    t.equal(r.result.responseFlags, 'URX');
  });

  t.test('retries replay the request body', async (t) => {
    const payload = 'x'.repeat(20_000);
    const r = await call('/flaky/2', { method: 'POST', body: payload });
    t.equal(r.status, 200);
    const got = JSON.parse(r.body);
    t.equal(got.len, payload.length, 'third try got the whole body');
    t.equal(got.try, 3);
    t.equal(r.result.attempts, 3);
    t.equal(r.result.responseFlags, '-');
  });

  t.test('a body over the retry buffer limit is not retried', async (t) => {
    const before = v1.seen.get('/flaky/1') ?? 0;
    const r = await call('/flaky/1', { method: 'POST', body: Buffer.alloc(200 * 1024, 1) });
    t.equal(r.status, 503, 'the first answer stands');
    t.equal(r.result.attempts, 1);
    t.equal((v1.seen.get('/flaky/1') ?? 0) - before, 1, 'the upstream saw one try');
    t.equal(r.result.responseFlags, '-', 'not URX: the limit was never reached');
  });

  t.test('upstream reset before headers: 503 UC, retried on reset', async (t) => {
    const before = v1.seen.get('/reset') ?? 0;
    const r = await call('/reset');
    t.equal(r.status, 503);
    t.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination');
    t.equal((v1.seen.get('/reset') ?? 0) - before, 2, 'retryOn reset, attempts 1 -> 2 tries');
    t.equal(r.result.responseFlags, 'UC,URX');
  });

  t.test('client goes away while the upstream works: the upstream request is cancelled, DC', async (t) => {
    const n = results.length;
    const ac = new AbortController();
    const closed = new Promise<void>((resolve) => v1.server.once('request', (_req, res) => res.on('close', () => resolve())));
    const p = request(`${base}/delay/5000`, { dispatcher: client, signal: ac.signal }).catch((e: Error) => e);
    setTimeout(() => ac.abort(), 100);
    t.ok((await p) instanceof Error, 'client aborted');
    const closedInTime = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000))]);
    t.ok(closedInTime, 'the upstream saw its request closed within 3 s (its handler would run 5 s)');
    while (results.length === n) await new Promise((resolve) => setTimeout(resolve, 5));
    const last = results[results.length - 1];
    t.match(last.responseFlags, /DC/);
    t.equal(last.status, 0, 'nothing was sent downstream');
    t.ok(last.durationMs < 2000, `ended at once (${last.durationMs} ms)`);
  });

  t.test('connect failure: 503 UF after retries', async (t) => {
    const r = await call('/dead');
    t.equal(r.status, 503);
    t.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
    t.equal(r.result.responseFlags, 'UF,URX');
    t.equal(r.result.attempts, 3);
  });

  t.test('no healthy upstream and missing subset', async (t) => {
    const r = await call('/empty');
    t.equal(r.status, 503);
    t.equal(r.body, 'no healthy upstream');
    t.equal(r.result.responseFlags, 'UH');
    const n = await call('/nosubset');
    t.equal(n.status, 503);
    t.equal(n.result.responseFlags, 'NC');
  });

  t.test('route timeout: 504 near the timeout', async (t) => {
    const r = await call('/delay/2000');
    t.equal(r.status, 504);
    t.equal(r.body, 'upstream request timeout');
    t.equal(r.headers['content-type'], 'text/plain');
    t.ok(r.ms >= 290 && r.ms < 900, `answered after ${Math.round(r.ms)} ms (timeout 300)`);
    t.equal(r.result.responseFlags, 'UT');
  });

  t.test('per-try timeout counts the attempts', async (t) => {
    const before = v1.seen.get('/delay/1000') ?? 0;
    const r = await call('/delay/1000');
    t.equal(r.status, 504);
    t.equal(r.body, 'upstream request timeout');
    t.equal(r.result.attempts, 3);
    t.equal((v1.seen.get('/delay/1000') ?? 0) - before, 3, 'the upstream saw 3 tries');
    t.ok(r.ms >= 450 && r.ms < 1000, `3 x 150 ms plus back-off: ${Math.round(r.ms)} ms`);
    t.equal(r.result.responseFlags, 'UT,URX');
  });

  t.test('fault abort', async (t) => {
    const r = await call('/abort');
    t.equal(r.status, 418);
    t.equal(r.body, 'fault filter abort');
    t.equal(r.headers['content-type'], 'text/plain');
    t.equal(r.headers.server, 'istio-envoy');
    t.notOk(r.headers['x-envoy-upstream-service-time'], 'no upstream time on a local reply');
    t.equal(r.result.responseFlags, 'FI');
    t.equal(r.result.attempts, 0);
  });

  t.test('fault delay', async (t) => {
    const r = await call('/slow');
    t.equal(r.status, 200);
    t.ok(r.ms >= 295, `held ${Math.round(r.ms)} ms (delay 300)`);
    t.equal(r.result.responseFlags, 'DI');
    t.equal(JSON.parse(r.body).url, '/echo', 'then routed, rewritten');
  });

  t.test('RBAC: DELETE denied with the exact body, other methods pass', async (t) => {
    const before = v1.seen.get('/echo') ?? 0;
    const d = await call('/echo', { method: 'DELETE' });
    t.equal(d.status, 403);
    t.equal(d.body, 'RBAC: access denied');
    t.equal(Buffer.byteLength(d.body), 19);
    t.equal(d.headers['content-type'], 'text/plain');
    t.equal(d.headers['content-length'], '19');
    t.equal(d.headers.server, 'istio-envoy');
    t.equal(d.result.responseCodeDetails, 'rbac_access_denied');
    t.equal(d.result.authzPolicy, 'AuthorizationPolicy default/deny-delete');
    t.equal(v1.seen.get('/echo') ?? 0, before, 'the upstream never saw it');
    for (const method of ['GET', 'POST', 'PUT']) t.equal((await call('/echo', { method, body: method === 'GET' ? undefined : 'x' })).status, 200, `${method} 200`);
    t.equal((await call('/echo', { method: 'POST', body: '' })).status, 200, 'POST with an empty body 200');
    // RBAC runs before fault: a denied request to the abort route gets 403, not 418.
    t.equal((await call('/abort', { method: 'DELETE' })).status, 403, 'RBAC before fault');
  });

  t.test('redirect', async (t) => {
    const r = await call('/old/page?x=1', { headers: { host: 'reviews:9080' } });
    t.equal(r.status, 301);
    t.equal(r.headers.location, 'http://reviews:9080/new/page?x=1');
    t.equal(r.headers.server, 'istio-envoy');
  });

  t.test('rewrite: the upstream sees the new path and Host', async (t) => {
    const r = await call('/api/items?id=7');
    t.equal(r.status, 200);
    const seen = JSON.parse(r.body);
    t.equal(seen.url, '/v1/items?id=7');
    t.equal(seen.headers.host, 'reviews.internal');
  });

  t.test('header operations, server, upstream service time, XFCC', async (t) => {
    const r = await call('/headers', { headers: { 'x-multi': 'orig', 'x-drop-me': '1', 'x-forwarded-client-cert': 'By=spiffe://evil' } });
    t.equal(r.status, 200);
    const seen = JSON.parse(r.body).headers;
    t.equal(seen['x-set'], 'yes', 'request set');
    t.equal(seen['x-multi'], 'orig, added', 'request add appends');
    t.notOk(seen['x-drop-me'], 'request remove');
    t.notOk(seen['x-forwarded-client-cert'], 'XFCC sanitized');
    t.match(seen['x-request-id'], /^[0-9a-f-]{36}$/, 'x-request-id generated');
    t.equal(r.headers['x-resp'], 'set', 'response set');
    t.notOk(r.headers['x-upstream-secret'], 'response remove');
    t.equal(r.headers.server, 'istio-envoy', 'server overwritten');
    t.match(r.headers['x-envoy-upstream-service-time'], /^\d+$/);
    t.equal(r.result.upstreamServiceTimeMs, Number(r.headers['x-envoy-upstream-service-time']));
  });

  t.test('large bodies stream intact both ways', async (t) => {
    const payload = randomBytes(8 * 1024 * 1024);
    const up = await call('/upload', { method: 'POST', body: payload });
    t.equal(up.status, 200);
    const got = JSON.parse(up.body);
    t.equal(got.len, payload.length, '8 MiB upload arrived whole');
    t.equal(got.sha256, createHash('sha256').update(payload).digest('hex'), 'same bytes');
    t.equal(up.result.bytesReceived, payload.length);

    const n = 16 * 1024 * 1024 + 123;
    const before = results.length;
    const r = await request(`${base}/bytes/${n}`, { dispatcher: client });
    let len = 0;
    let bad = false;
    for await (const c of r.body) {
      len += (c as Buffer).length;
      if ((c as Buffer).some((b) => b !== 7)) bad = true;
    }
    while (results.length === before) await new Promise((resolve) => setImmediate(resolve));
    t.equal(len, n, '16 MiB download arrived whole');
    t.notOk(bad, 'bytes intact');
    t.equal(results[results.length - 1].bytesSent, n);
  });

  t.test('50 concurrent requests over the split', async (t) => {
    const before = results.length;
    const replies = await Promise.all(Array.from({ length: 50 }, () => call('/split')));
    t.ok(replies.every((r) => r.status === 200), 'all 200');
    while (results.length < before + 50) await new Promise((resolve) => setImmediate(resolve));
    const mine = results.slice(before);
    t.equal(new Set(mine.map((r) => r.requestId)).size, 50, 'one result per request, each with its own x-request-id');
    t.ok(mine.every((r) => r.status === 200 && r.responseFlags === '-'), 'every result 200, no flags');
  });

  t.test('client goes away during a fault delay: DC, nothing upstream', async (t) => {
    const before = v1.seen.get('/echo') ?? 0;
    const n = results.length;
    const ac = new AbortController();
    const p = request(`${base}/slow`, { dispatcher: client, signal: ac.signal }).catch((e: Error) => e);
    setTimeout(() => ac.abort(), 50);
    t.ok((await p) instanceof Error, 'client aborted');
    while (results.length === n) await new Promise((resolve) => setTimeout(resolve, 5));
    t.match(results[results.length - 1].responseFlags, /DC/);
    t.equal(v1.seen.get('/echo') ?? 0, before, 'never went upstream');
  });
});

t.test('default route: no VirtualService for the Service, and a direct workload', async (t) => {
  const v1 = await startUpstream('v1');
  const engine = new L7Engine({
    config: { routes: [], destinationPolicies: [], authorization: [] },
    endpoints: (host, port) => (host === 'ratings.default.svc.cluster.local' && port === 9080 ? [{ address: '127.0.0.1', port: v1.port, labels: {} }] : []),
    connect: (ep) =>
      new Promise((resolve, reject) => {
        const s = net.connect(ep.port, ep.address);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
  });
  let info: DownstreamInfo = { service: { host: 'ratings.default.svc.cluster.local', port: 9080 }, srcIp: '127.0.0.1', dstIp: '10.96.0.30', dstPort: 9080 };
  const proxy = http.createServer((req, res) => void engine.handle(req, res, info));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const base = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const client = new Agent();
  t.teardown(async () => {
    await client.close();
    await engine.close();
    proxy.close();
    v1.server.close();
    proxy.closeAllConnections();
    v1.server.closeAllConnections();
  });
  const r = await request(`${base}/status/503`, { dispatcher: client });
  t.equal(r.statusCode, 503);
  await r.body.text();
  t.equal(v1.seen.get('/status/503'), 1, 'waypoint default route: no retries');

  // A sidecar's outbound default route carries Istio's default retry policy (503 retried twice) and the attempt count.
  const sidecar = new L7Engine({
    config: { routes: [], destinationPolicies: [], authorization: [] },
    endpoints: () => [{ address: '127.0.0.1', port: v1.port, labels: {} }],
    connect: (ep) =>
      new Promise((resolve, reject) => {
        const s = net.connect(ep.port, ep.address);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
    defaultRouteRetries: DEFAULT_RETRY_POLICY,
    includeAttemptCount: true,
    serverName: 'envoy',
  });
  t.teardown(() => sidecar.close());
  const sidecarProxy = http.createServer((req, res) => void sidecar.handle(req, res, info));
  sidecarProxy.listen(0, '127.0.0.1');
  await once(sidecarProxy, 'listening');
  t.teardown(() => {
    sidecarProxy.close();
    sidecarProxy.closeAllConnections();
  });
  const sc = await request(`http://127.0.0.1:${(sidecarProxy.address() as net.AddressInfo).port}/flaky/2`, { dispatcher: client, method: 'POST', body: 'hi' });
  t.equal(sc.statusCode, 200, 'sidecar default route: 503 retried until it succeeds');
  t.equal(JSON.parse(await sc.body.text()).try, 3);
  t.equal(v1.last?.headers['x-envoy-attempt-count'], '3', 'the upstream saw attempt 3');
  t.equal(sc.headers.server, 'envoy', 'sidecar outbound server name');

  info = { srcIp: '127.0.0.1', dstIp: '127.0.0.1', dstPort: v1.port };
  const d = await request(`${base}/echo`, { dispatcher: client });
  t.equal(d.statusCode, 200, 'workload addressed directly: its own address');
  t.equal(JSON.parse(await d.body.text()).version, 'v1');
});

// The waypoint hands the engine HTTP/2 CONNECT streams (HBONE without the TLS here): the same
// engine must speak HTTP/1.1 through them, reuse one stream for sequential requests, and stream bodies.
t.test('upstream over HTTP/2 CONNECT streams', async (t) => {
  const v1 = await startUpstream('v1');
  const authorities: string[] = [];
  const tunnel = http2.createServer();
  tunnel.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT') {
      stream.respond({ ':status': 405 });
      stream.end();
      return;
    }
    const authority = headers[':authority'] as string;
    authorities.push(authority);
    const [host, port] = authority.split(':');
    const sock = net.connect(Number(port), host, () => {
      stream.respond({ ':status': 200 });
      sock.pipe(stream);
      stream.pipe(sock);
    });
    sock.on('error', () => stream.close(http2.constants.NGHTTP2_CONNECT_ERROR));
    stream.on('error', () => sock.destroy());
    stream.on('close', () => sock.destroy());
  });
  tunnel.listen(0, '127.0.0.1');
  await once(tunnel, 'listening');
  const session = http2.connect(`http://127.0.0.1:${(tunnel.address() as net.AddressInfo).port}`);
  session.on('error', () => undefined);

  const engine = new L7Engine({
    config: { routes: [], destinationPolicies: [], authorization: [] },
    endpoints: () => [{ address: '127.0.0.1', port: v1.port, labels: {} }],
    connect: (ep) =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':method': 'CONNECT', ':authority': `${ep.address}:${ep.port}` });
        stream.once('response', (h) => (h[':status'] === 200 ? resolve(stream) : reject(new Error(`CONNECT ${h[':status']}`))));
        stream.once('error', reject);
      }),
  });
  const info: DownstreamInfo = { service: { host: HOST, port: PORT }, srcIp: '127.0.0.1', dstIp: '10.96.0.20', dstPort: PORT };
  const proxy = http.createServer((req, res) => void engine.handle(req, res, info));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const base = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const client = new Agent();
  t.teardown(async () => {
    await client.close();
    await engine.close();
    session.close();
    tunnel.close();
    proxy.close();
    v1.server.close();
    proxy.closeAllConnections();
    v1.server.closeAllConnections();
  });

  for (let i = 0; i < 3; i++) {
    const r = await request(`${base}/echo?i=${i}`, { dispatcher: client });
    t.equal(r.statusCode, 200, `request ${i} through the tunnel`);
    t.equal(JSON.parse(await r.body.text()).url, `/echo?i=${i}`);
  }
  t.same(authorities, [`127.0.0.1:${v1.port}`], 'one CONNECT stream, reused (pooled) for sequential requests');

  const payload = randomBytes(4 * 1024 * 1024);
  const up = await request(`${base}/upload`, { dispatcher: client, method: 'POST', body: payload });
  const got = JSON.parse(await up.body.text());
  t.equal(got.len, payload.length, '4 MiB through the CONNECT stream');
  t.equal(got.sha256, createHash('sha256').update(payload).digest('hex'), 'same bytes');
});
