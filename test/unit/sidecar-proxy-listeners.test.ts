// Two sidecar proxies in-process on loopback: sleep (the client, 127.79.0.3) and productpage
// (the server, 127.79.1.5), each with its real listeners on random ports. Every 127.x address
// is local on lo, so apps listen on their pod IPs and the server sidecar reaches them from
// 127.0.0.6 as in a pod. Nothing REDIRECTs here: the original destination a pod's iptables
// would keep is registered per client source port and handed to the proxies as SO_ORIGINAL_DST
// would; connections the client sidecar opens to the server's app ports (Istio mTLS) and
// :15008 (HBONE) are steered to the server sidecar's 15006 and 15008 by its dialer.
import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createLabCa, issueProxyCerts } from '../../src/mesh/ca.js';
import { meshTlsFromCertDir } from '../../src/mesh/cert-dir.js';
import { secureContextFor } from '../../src/mesh/tls.js';
import { HbonePool } from '../../src/mesh/pool.js';
import type { Address } from '../../src/mesh/hbone-server.js';
import type { Service, Workload } from '../../src/mesh/workloads.js';
import type { Dialer } from '../../src/proxy/dialer.js';
import { seriesValue } from '../../src/proxy/metrics.js';
import type { SidecarConfig } from '../../src/sidecar-proxy/config.js';
import { startSidecar, inboundL7Config, type RunningSidecar } from '../../src/sidecar-proxy/sidecar.js';
import { ISTIO_ALPN } from '../../src/sidecar-proxy/istio-mtls.js';

const SLEEP = '127.79.0.3';
const PP = '127.79.1.5';
const LEGACY = '127.79.1.9';
const UNKNOWN = '127.79.9.9';
const VIP = '10.96.0.20';
const id = (sa: string) => ({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: sa });
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

const wl = (ip: string, name: string, extra: Partial<Workload> = {}): Workload => ({
  workloadIp: ip, waypointAddresses: [], gatewayAddress: null, protocol: 'HBONE', name, namespace: 'default',
  trustDomain: 'cluster.local', serviceAccount: name, workloadName: name, workloadType: 'pod', canonicalName: name,
  canonicalRevision: 'v1', node: 'node-a', nativeHbone: true, authorizationPolicies: [], status: 'Healthy', clusterId: 'Kubernetes', ...extra,
});
const workloads = [wl(SLEEP, 'sleep'), wl(PP, 'productpage'), wl(LEGACY, 'legacy', { protocol: 'TCP', nativeHbone: false })];
const services: Service[] = [
  { name: 'productpage', namespace: 'default', hostname: 'productpage.default.svc.cluster.local', vips: [VIP], ports: { 9080: 9080, 9000: 9000 }, endpoints: [PP] },
];

function config(name: string, ip: string, certDir: string): SidecarConfig {
  return {
    node: 'node-a', clusterId: 'Kubernetes', trustDomain: 'cluster.local', instanceIp: ip, certDir, enableOrigSrc: false,
    workloads, services, policies: [],
    pod: { name, namespace: 'default', serviceAccount: name, labels: { app: name } },
    identity: spiffe(name), hbone: true, mtlsOnlyPeers: [],
    httpPorts: { 'productpage.default.svc.cluster.local': [9080] },
    inboundPorts: name === 'productpage' ? [9080, 9000] : [],
    mtls: { mode: 'PERMISSIVE', ports: {} },
    podLabels: {}, routes: [], destinationPolicies: [], l7Policies: [],
    listen: { host: '0.0.0.0', outbound: 0, inbound: 0, hbone: 0, admin: 0, stats: 0, readiness: 0 },
  };
}

/** The original destination of a connection, by its source port (what REDIRECT's conntrack entry keeps). */
const origDsts = new Map<number, Address>();
let nextPort = 20000 + Math.floor(Math.random() * 20000);
const origDstOf = (sock: net.Socket): Address => {
  const a = origDsts.get(sock.remotePort ?? 0);
  if (!a) throw new Error(`no original destination registered for source port ${sock.remotePort}`);
  return a;
};

/** A connection to a capture listener from `src`, as if REDIRECTed from `origDst`. */
function redirected(listenPort: number, listenIp: string, origDst: Address, src: string): net.Socket {
  const localPort = nextPort++;
  origDsts.set(localPort, origDst);
  return net.connect({ host: listenIp, port: listenPort, localAddress: src, localPort, allowHalfOpen: true });
}

function capture(lines: Array<Record<string, unknown>>): Logger {
  return pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
}

async function waitFor<T>(what: string, pred: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(sock: net.Socket | tls.TLSSocket, opts: { method?: string; path: string; host: string; headers?: Record<string, string> }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ method: opts.method ?? 'GET', path: opts.path, headers: { host: opts.host, ...opts.headers }, createConnection: () => sock }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body });
        sock.destroy();
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function echoThrough(sock: net.Socket | tls.TLSSocket, payload: string): Promise<{ reply: string; error?: string }> {
  return new Promise((resolve) => {
    let reply = '';
    let error: string | undefined;
    sock.on('data', (d) => (reply += d));
    sock.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    sock.on('close', () => resolve({ reply, ...(error ? { error } : {}) }));
    sock.end(payload);
  });
}

const get = (port: number, path: string): Promise<{ status: number; body: string }> => new Promise((res, rej) => {
  http.get({ host: '127.0.0.1', port, path }, (r) => {
    let body = '';
    r.on('data', (d) => (body += d));
    r.on('end', () => res({ status: r.statusCode!, body }));
  }).on('error', rej);
});

interface World {
  sleep: RunningSidecar;
  pp: RunningSidecar;
  logs: { sleep: Array<Record<string, unknown>>; pp: Array<Record<string, unknown>> };
  /** What productpage's HTTP app saw, per request. */
  seen: Array<{ path: string; remote: string; headers: http.IncomingHttpHeaders }>;
  /** TCP echo peers: who connected (source address). */
  tcpFrom: string[];
  clientCerts: string;
  dials: string[];
}

async function world(t: Test): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'alt-sc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await createLabCa(join(dir, 'ca'), { lab: 'sc' });
  const certs = (name: string) => join(dir, `certs-${name}`);
  await issueProxyCerts(join(dir, 'ca'), certs('sleep'), [id('sleep')]);
  await issueProxyCerts(join(dir, 'ca'), certs('productpage'), [id('productpage')]);
  const servers: net.Server[] = [];
  t.teardown(() => servers.forEach((s) => s.close()));
  const listenOn = (srv: net.Server, host: string, port: number): Promise<void> =>
    new Promise((res, rej) => srv.once('error', rej).listen({ host, port }, () => res()));

  // productpage's app: HTTP on 9080 (echoes what it saw; /flaky answers 503 on its first try) and a TCP echo on 9000.
  const seen: World['seen'] = [];
  const flaky = new Set<string>();
  const app = http.createServer((req, res) => {
    seen.push({ path: req.url!, remote: req.socket.remoteAddress!, headers: req.headers });
    if (req.url === '/flaky' && !flaky.has(String(req.headers['x-request-id']))) {
      flaky.add(String(req.headers['x-request-id']));
      res.writeHead(503, { server: 'app' }).end('try again');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', server: 'app' }).end(JSON.stringify({ path: req.url }));
  });
  servers.push(app);
  await listenOn(app, PP, 9080);
  const tcpFrom: string[] = [];
  for (const [ip, port, tag] of [[PP, 9000, 'pp'], [LEGACY, 7000, 'legacy'], [UNKNOWN, 7001, 'unknown']] as const) {
    const echo = net.createServer({ allowHalfOpen: true }, (c) => {
      tcpFrom.push(`${tag}<-${c.remoteAddress}`);
      c.on('error', () => undefined);
      c.write(`${tag}:`);
      c.pipe(c);
    });
    servers.push(echo);
    await listenOn(echo, ip, port);
  }

  const logs = { sleep: [] as Array<Record<string, unknown>>, pp: [] as Array<Record<string, unknown>> };
  const pp = await startSidecar(config('productpage', PP, certs('productpage')), capture(logs.pp), { origDstOf });
  t.teardown(() => pp.close());
  // The client sidecar's own connections: to productpage's :15008 and app ports land on its sidecar.
  const dials: string[] = [];
  const route = (dst: Address): net.Socket => {
    dials.push(`${dst.ip}:${dst.port}`);
    if (dst.ip === PP && dst.port === 15008) return net.connect({ host: PP, port: pp.ports.hbone, localAddress: SLEEP });
    if (dst.ip === PP) return redirected(pp.ports.inbound, PP, dst, SLEEP);
    return net.connect({ host: dst.ip, port: dst.port, localAddress: SLEEP, allowHalfOpen: true });
  };
  const dialer: Dialer = {
    mode: 'off',
    connect: (dst) => ({ socket: route(dst), spoofed: false }),
    connected: (dst) => new Promise((resolve, reject) => {
      const socket = route(dst);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve({ socket, spoofed: false });
      });
    }),
  };
  const sleep = await startSidecar(config('sleep', SLEEP, certs('sleep')), capture(logs.sleep), { origDstOf, dialer, random: () => 0 });
  t.teardown(() => sleep.close());
  return { sleep, pp, logs, seen, tcpFrom, clientCerts: certs('sleep'), dials };
}

/** Istio mTLS from sleep's identity straight to productpage's 15006, as another sidecar would. */
async function mtlsTo(w: World, origDst: Address, alpn = ISTIO_ALPN): Promise<tls.TLSSocket> {
  const ctx = await secureContextFor(meshTlsFromCertDir(w.clientCerts), id('sleep'));
  const raw = redirected(w.pp.ports.inbound, PP, origDst, SLEEP);
  return tls.connect({ socket: raw, secureContext: ctx, ALPNProtocols: alpn, rejectUnauthorized: true, checkServerIdentity: () => undefined });
}

t.test('15006: plaintext HTTP reaches the app from 127.0.0.6, server istio-envoy, no XFCC', async (t) => {
  const w = await world(t);
  const r = await request(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9080 }, SLEEP), { path: '/headers', host: 'productpage:9080', headers: { 'x-forwarded-client-cert': 'By=forged' } });
  t.equal(r.status, 200);
  t.equal(r.headers.server, 'istio-envoy', 'the sidecar inbound overwrites the app\'s server header');
  t.equal(w.seen[0].remote, '127.0.0.6', 'the app sees Envoy\'s inbound passthrough source');
  t.notOk(w.seen[0].headers['x-forwarded-client-cert'], 'a peer without a certificate gets no XFCC: what it sent is removed');
  const line = await waitFor('request log', () => w.logs.pp.find((l) => l.msg === 'request'));
  t.match(line, { direction: 'inbound', method: 'GET', path: '/headers', status: 200, 'src.addr': SLEEP, 'dst.service': 'productpage.default.svc.cluster.local', upstream_cluster: 'inbound|9080||' });
});

t.test('15006: Istio mTLS is told apart by its first byte; the app gets XFCC with the peer identity', async (t) => {
  const w = await world(t);
  const r = await request(await mtlsTo(w, { ip: PP, port: 9080 }), { path: '/mtls', host: 'productpage:9080', headers: { 'x-forwarded-client-cert': 'By=upstream-hop' } });
  t.equal(r.status, 200);
  t.match(String(w.seen[0].headers['x-forwarded-client-cert']),
    new RegExp(`^By=upstream-hop,By=${spiffe('productpage')};Hash=[0-9a-f]{64};Subject="";URI=${spiffe('sleep')}$`), 'APPEND_FORWARD: the peer\'s element after what it sent');
  const conn = await waitFor('connection log', () => w.logs.pp.find((l) => l.msg === 'connection complete'));
  t.match(conn, { direction: 'inbound', via: 'mtls+http', 'src.identity': spiffe('sleep'), 'dst.identity': spiffe('productpage') });
  const metrics = (await get(w.pp.ports.stats, '/stats/prometheus')).body;
  t.equal(seriesValue(metrics, 'istio_requests_total', { reporter: 'destination', source_principal: spiffe('sleep'), destination_principal: spiffe('productpage'), connection_security_policy: 'mutual_tls', response_code: '200' }), 1);
});

t.test('15006: a TLS client without Istio\'s ALPN is reset', async (t) => {
  const w = await world(t);
  const s = await mtlsTo(w, { ip: PP, port: 9080 }, ['http/1.1']);
  const r = await echoThrough(s, 'x');
  t.ok(r.error, `the client sees an error (${r.error})`);
  t.equal(w.seen.length, 0, 'nothing reached the app');
  const line = await waitFor('failure log', () => w.logs.pp.find((l) => l.msg === 'connection failed'));
  // Node's TLS server refuses the handshake itself (no_application_protocol alert).
  t.match(line.reason, /TLS handshake failed.*(no application protocol|NO_APPLICATION_PROTOCOL)|ALPN/i);
});

t.test('15006: TCP port, plaintext allowed under PERMISSIVE, reset under STRICT; mTLS passes both', async (t) => {
  const w = await world(t);
  const plain = await echoThrough(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9000 }, SLEEP), 'hi');
  t.same(plain, { reply: 'pp:hi' });
  t.equal(w.tcpFrom.at(-1), 'pp<-127.0.0.6');
  w.pp.z.cfg.mtls = { mode: 'STRICT', ports: {} };
  const strict = await echoThrough(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9000 }, SLEEP), 'hi');
  t.equal(strict.error, 'ECONNRESET', 'plaintext is reset under STRICT');
  t.equal(strict.reply, '');
  const denied = await waitFor('deny log', () => w.logs.pp.find((l) => l.msg === 'connection denied'));
  t.match(denied, { policy: 'default/istio_converted_static_strict', reason: /STRICT/ });
  const m = await echoThrough(await mtlsTo(w, { ip: PP, port: 9000 }), 'sec');
  t.same(m, { reply: 'pp:sec' }, 'mTLS still gets through');
});

t.test('15006: L7 policy at the server sidecar: 403 RBAC: access denied', async (t) => {
  const w = await world(t);
  w.pp.z.cfg.l7Policies = [{
    name: 'get-only', namespace: 'default', origin: 'AuthorizationPolicy default/get-only', action: 'ALLOW',
    target: { selector: { app: 'productpage' } }, rules: [{ to: [{ methods: ['GET'] }] }],
  }];
  w.pp.inboundEngine.update(inboundL7Config(w.pp.z.cfg));
  const post = await request(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9080 }, SLEEP), { method: 'POST', path: '/x', host: 'productpage:9080' });
  t.equal(post.status, 403);
  t.equal(post.body, 'RBAC: access denied');
  t.equal(post.headers.server, 'istio-envoy');
  const ok = await request(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9080 }, SLEEP), { path: '/x', host: 'productpage:9080' });
  t.equal(ok.status, 200);
  t.equal(w.seen.length, 1, 'only the GET reached the app');
});

t.test('15008: HBONE for this pod only; TCP and HTTP behind it', async (t) => {
  const w = await world(t);
  const pool = new HbonePool({ tls: meshTlsFromCertDir(w.clientCerts), dial: () => net.connect({ host: PP, port: w.pp.ports.hbone, localAddress: SLEEP }) });
  t.teardown(() => pool.close());
  const key = { source: id('sleep'), expected: id('productpage'), address: { ip: PP, port: 15008 } };
  const tcp = await pool.connect(key, `${PP}:9000`);
  const reply = await new Promise<string>((resolve) => {
    let s = '';
    tcp.stream.on('data', (d) => (s += d));
    tcp.stream.on('end', () => resolve(s));
    tcp.stream.end('tun');
  });
  t.equal(reply, 'pp:tun');
  await t.rejects(pool.connect(key, `127.79.1.6:9000`), { name: 'HboneError', message: /: 400$/ }, 'an authority that is not this pod: 400');
  const refused = (l: Record<string, unknown>) => l.status === 400 && l['dst.addr'] === '127.79.1.6:9000';
  await waitFor('refusal log', () => w.logs.pp.find(refused));
  t.equal(w.logs.pp.filter(refused).length, 1, 'the refusal is logged once, with status 400');
  const tunnel = await pool.connect(key, `${PP}:9080`);
  const r = await new Promise<string>((resolve) => {
    let s = '';
    tunnel.stream.on('data', (d) => (s += d));
    tunnel.stream.on('end', () => resolve(s));
    tunnel.stream.end('GET /over-hbone HTTP/1.1\r\nhost: productpage:9080\r\nconnection: close\r\n\r\n');
  });
  t.match(r, /^HTTP\/1\.1 200/);
  t.match(r, /server: istio-envoy/i);
  t.equal(w.seen[0].headers['x-forwarded-client-cert'], `By=${spiffe('productpage')};URI=${spiffe('sleep')}`, 'XFCC over HBONE: identities only');
});

t.test('15001 -> HBONE -> 15008: HTTP to a Service, routed client-side (server envoy, attempt count, default retries)', async (t) => {
  const w = await world(t);
  const viaVip = () => redirected(w.sleep.ports.outbound, '127.0.0.1', { ip: VIP, port: 9080 }, SLEEP);
  const r = await request(viaVip(), { path: '/hello', host: 'productpage:9080' });
  t.equal(r.status, 200);
  t.equal(r.headers.server, 'envoy', 'the client sidecar outbound names itself envoy');
  t.ok(r.headers['x-envoy-upstream-service-time'] !== undefined);
  t.equal(w.seen[0].headers['x-envoy-attempt-count'], '1');
  t.equal(w.seen[0].headers['x-forwarded-client-cert'], `By=${spiffe('productpage')};URI=${spiffe('sleep')}`, 'the server sidecar saw sleep\'s identity');
  t.equal(w.seen[0].remote, '127.0.0.6');
  t.ok(w.dials.includes(`${PP}:15008`), 'the client sidecar opened HBONE to the pod\'s :15008');

  const flaky = await request(viaVip(), { path: '/flaky', host: 'productpage:9080' });
  t.equal(flaky.status, 200, 'Istio\'s default retry policy retried the 503');
  t.same(w.seen.filter((s) => s.path === '/flaky').map((s) => s.headers['x-envoy-attempt-count']), ['1', '2']);
  const line = await waitFor('retried request log', () => w.logs.sleep.find((l) => l.msg === 'request' && l.path === '/flaky'));
  t.match(line, { direction: 'outbound', attempts: 2, route: 'default', 'dst.service': 'productpage.default.svc.cluster.local:9080', upstream_transport: `hbone ${PP}:15008` });
  const metrics = (await get(w.sleep.ports.stats, '/stats/prometheus')).body;
  t.equal(seriesValue(metrics, 'istio_requests_total', { reporter: 'source', source_principal: spiffe('sleep'), destination_principal: spiffe('productpage'), destination_service: 'productpage.default.svc.cluster.local', response_code: '200' }), 2);
});

t.test('15001: TCP over HBONE, Istio mTLS to an mTLS-only peer, plaintext to mode none, passthrough to the unknown', async (t) => {
  const w = await world(t);
  const out = (dst: Address) => redirected(w.sleep.ports.outbound, '127.0.0.1', dst, SLEEP);
  t.same(await echoThrough(out({ ip: VIP, port: 9000 }), 'a'), { reply: 'pp:a' });
  const hb = await waitFor('hbone log', () => w.logs.sleep.find((l) => l.msg === 'connection complete' && l.via === 'hbone'));
  t.match(hb, { 'dst.addr': `${PP}:9000`, 'dst.hbone_addr': `${PP}:15008`, 'dst.service': 'productpage.default.svc.cluster.local' });

  w.sleep.z.cfg.mtlsOnlyPeers = [PP];
  t.same(await echoThrough(out({ ip: VIP, port: 9000 }), 'b'), { reply: 'pp:b' });
  await waitFor('istio-mtls log', () => w.logs.sleep.find((l) => l.msg === 'connection complete' && l.via === 'istio-mtls'));
  const srv = await waitFor('server mtls log', () => w.logs.pp.find((l) => l.msg === 'connection complete' && l.via === 'mtls'));
  t.equal(srv['src.identity'], spiffe('sleep'), 'the server sidecar took Istio mTLS on 15006 and saw sleep');

  t.same(await echoThrough(out({ ip: LEGACY, port: 7000 }), 'c'), { reply: 'legacy:c' });
  await waitFor('plaintext log', () => w.logs.sleep.find((l) => l.via === 'plaintext' && l['dst.workload'] === 'legacy'));
  t.same(await echoThrough(out({ ip: UNKNOWN, port: 7001 }), 'd'), { reply: 'unknown:d' });
  await waitFor('passthrough log', () => w.logs.sleep.find((l) => l.via === 'passthrough' && l['dst.addr'] === `${UNKNOWN}:7001`));
  t.ok(w.tcpFrom.includes(`legacy<-${SLEEP}`), 'the proxy connects from the pod\'s own address (no spoofing needed)');
});

t.test('admin: config_dump, readiness, stats', async (t) => {
  const w = await world(t);
  t.same(await get(w.sleep.ports.readiness, '/healthz/ready'), { status: 200, body: 'ready\n' });
  const dump = JSON.parse((await get(w.sleep.ports.admin, '/config_dump')).body);
  t.match(dump, { kind: 'sidecar', identity: spiffe('sleep'), hbone: true, config: { version: 1 } });
  t.match(dump.services, [{ service: 'productpage.default.svc.cluster.local', vips: [VIP], ports: [{ port: 9000, protocol: 'TCP' }, { port: 9080, protocol: 'HTTP' }] }]);
  // Envoy's listeners: the virtual ones the nat rules feed, one per Service port, the side doors.
  t.same(dump.listeners.map((l: { name: string }) => l.name), ['virtualOutbound', 'virtualInbound', 'connect_terminate', `${VIP}_9000`, `${VIP}_9080`, 'admin', 'prometheus', 'readiness']);
  t.match(dump.listeners.find((l: { name: string }) => l.name === 'virtualOutbound'), { address: `0.0.0.0:${w.sleep.ports.outbound}`, what: /SO_ORIGINAL_DST/ });
  t.match(dump.listeners.find((l: { name: string }) => l.name === `${VIP}_9080`), { protocol: 'HTTP', what: /client-side routing, retries, timeouts, faults/ });
  t.match(dump.listeners.find((l: { name: string }) => l.name === `${VIP}_9000`), { protocol: 'TCP', what: `TCP: cluster outbound|9000||productpage.default.svc.cluster.local` });
  const cluster = dump.clusters.find((c: { name: string }) => c.name === 'outbound|9080||productpage.default.svc.cluster.local');
  t.match(dump.defaultRouteRetries, { attempts: 2, retriableStatusCodes: [503] }, 'the default route\'s retries, as the proxy applies them');
  t.same(cluster.endpoints, [{ address: PP, port: 9080, transport: `hbone ${PP}:15008` }], 'each endpoint with how the sidecar reaches it');
  const ppDump = JSON.parse((await get(w.pp.ports.admin, '/config_dump')).body);
  t.ok(ppDump.clusters.some((c: { name: string }) => c.name === 'inbound|9080||'), 'the server lists its inbound clusters');
  t.equal((await get(w.pp.ports.stats, '/nope')).status, 404);
});

t.test('L4 policies at the server sidecar: per request (403) on an HTTP port, reset on a TCP port', async (t) => {
  const w = await world(t);
  // An L4-only ALLOW for sleep's principal, selecting productpage (as istiod hands it over).
  const policies = [{
    name: 'pp-from-sleep', namespace: 'default', scope: 'WorkloadSelector' as const, action: 'Allow' as const,
    groups: [[[{ principals: [{ Exact: 'cluster.local/ns/default/sa/sleep' }] }]]],
  }];
  w.pp.z.xds.apply({ workloads: workloads.map((x) => (x.workloadIp === PP ? { ...x, authorizationPolicies: ['default/pp-from-sleep'] } : x)), services, policies });
  const plain = await request(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9080 }, SLEEP), { path: '/plain', host: 'productpage:9080' });
  t.equal(plain.status, 403, 'plaintext has no principal: denied per request');
  t.equal(plain.body, 'RBAC: access denied');
  const line = await waitFor('deny log', () => w.logs.pp.find((l) => l.msg === 'request' && l.status === 403));
  t.match(line, { response_code_details: 'rbac_access_denied', direction: 'inbound' });
  const sec = await request(await mtlsTo(w, { ip: PP, port: 9080 }), { path: '/sec', host: 'productpage:9080' });
  t.equal(sec.status, 200, 'sleep\'s identity over mTLS: allowed');
  t.same(w.seen.map((x) => x.path), ['/sec']);
  const tcp = await echoThrough(redirected(w.pp.ports.inbound, PP, { ip: PP, port: 9000 }, SLEEP), 'x');
  t.equal(tcp.error, 'ECONNRESET', 'a TCP port is reset');
  const denied = await waitFor('L4 deny log', () => w.logs.pp.find((l) => l.msg === 'connection denied'));
  t.match(denied.reason, /no ALLOW policy matched \(default\/pp-from-sleep\)/);
  t.same(await echoThrough(await mtlsTo(w, { ip: PP, port: 9000 }), 'y'), { reply: 'pp:y' }, 'sleep over mTLS gets through');
});

t.test('a connection addressed to the proxy\'s own listener is refused, not looped', async (t) => {
  const w = await world(t);
  const r = await echoThrough(redirected(w.sleep.ports.outbound, '127.0.0.1', { ip: SLEEP, port: w.sleep.ports.outbound }, SLEEP), 'loop');
  t.equal(r.reply, '');
  const line = await waitFor('loop log', () => w.logs.sleep.find((l) => l.msg === 'connection failed'));
  t.match(line.reason, /own listener/);
  const r2 = await echoThrough(redirected(w.pp.ports.inbound, PP, { ip: PP, port: w.pp.ports.inbound }, SLEEP), 'loop');
  t.equal(r2.reply, '');
  t.match((await waitFor('loop log', () => w.logs.pp.find((l) => l.msg === 'connection failed'))).reason, /own listener/);
});
