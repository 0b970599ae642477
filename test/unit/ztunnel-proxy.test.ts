// The ztunnel listeners on loopback. Pods get 127.77.<node>.<n> addresses: every one is a
// local address on lo, so apps listen on their real pod IP, HBONE servers on <podIP>:15008
// (their sockets' local address is the original destination, as under TPROXY) and the real
// dialer binds the client pod IP as source (IP_TRANSPARENT "spoofing" of a local address).
// Only the outbound side needs its original destination injected: nothing TPROXYs here.
import t, { type Test } from 'tap';
import net from 'node:net';
import http from 'node:http';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createLabCa, issueProxyCerts } from '../../src/mesh/ca.js';
import { meshTlsFromCertDir } from '../../src/mesh/cert-dir.js';
import type { MeshTls } from '../../src/mesh/tls.js';
import type { Address } from '../../src/mesh/hbone-server.js';
import { HbonePool } from '../../src/mesh/pool.js';
import { HboneError } from '../../src/mesh/hbone-client.js';
import { workloadIdentity } from '../../src/mesh/workloads.js';
import { planAddresses, podUid } from '../../src/topology/address-plan.js';
import type { PodSpec, Topology } from '../../src/topology/types.js';
import { ztunnelConfigFromPlan, ztunnelIdentities, workloadFromPod } from '../../src/ztunnel/config-from-plan.js';
import type { ZtunnelConfig, ZtunnelInputs } from '../../src/ztunnel/config.js';
import { createProxyInputs } from '../../src/proxy/inputs.js';
import { createDialer, type Dialer } from '../../src/proxy/dialer.js';
import { seriesValue } from '../../src/proxy/metrics.js';
import { handleOutbound } from '../../src/ztunnel/outbound.js';
import { createInbound } from '../../src/ztunnel/inbound.js';
import { handleInboundPassthrough } from '../../src/ztunnel/inbound-passthrough.js';
import { startZtunnel } from '../../src/ztunnel/ztunnel.js';
import type { AccessRecord } from '../../src/proxy/connection.js';

const pod = (p: Omit<PodSpec, 'uid' | 'namespace' | 'labels'> & { namespace?: string; labels?: Record<string, string> }): PodSpec =>
  ({ namespace: 'default', labels: { app: p.name }, ...p, uid: podUid('zt', p.namespace ?? 'default', p.name) });

const topology: Topology = {
  name: 'zt',
  file: '/labs/zt.yaml',
  network: { nodeCidr: '172.18.0.0/16', podCidr: '127.77.0.0/16', serviceCidr: '10.96.0.0/16', dnsIp: '10.96.0.10' },
  tunnel: 'auto',
  nodes: [{ name: 'node-a', index: 0 }, { name: 'node-b', index: 1 }],
  pods: [
    pod({ name: 'sleep', node: 'node-a', serviceAccount: 'sleep', mode: 'ambient' }),
    pod({ name: 'local', node: 'node-a', serviceAccount: 'local', mode: 'ambient' }),
    pod({ name: 'sidecar', node: 'node-a', serviceAccount: 'sidecar', mode: 'sidecar' }),
    pod({ name: 'httpbin', node: 'node-b', serviceAccount: 'httpbin', mode: 'ambient' }),
    pod({ name: 'legacy', node: 'node-b', serviceAccount: 'default', mode: 'none', namespace: 'legacy' }),
  ],
  services: [
    { name: 'httpbin', namespace: 'default', selector: { app: 'httpbin' }, ports: [{ port: 8000, targetPort: 80, protocol: 'TCP' }] },
  ],
  policies: [
    // httpbin: only sleep, only port 80 (selector); local: deny port 81 (namespace-wide DENY).
    {
      name: 'httpbin-allow-sleep', namespace: 'default', action: 'ALLOW', selector: { app: 'httpbin' },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }], to: [{ operation: { ports: ['80'] } }] }],
    },
    { name: 'deny-81', namespace: 'default', action: 'DENY', rules: [{ to: [{ operation: { ports: ['81'] } }] }] },
  ],
};
const plan = planAddresses(topology);
const ip = (name: string): string => plan.pods.find((p) => p.name === name)!.ip;
const VIP = plan.services.find((s) => s.name === 'httpbin')!.vip;

const listen = (srv: net.Server): Promise<number> =>
  new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));

function readAll(s: net.Socket): Promise<Buffer> {
  return readUntilClose(s).then((r) => r.data);
}

/** Everything the peer sent, and the error code if the connection was reset rather than closed. */
function readUntilClose(s: net.Socket): Promise<{ data: Buffer; error?: string }> {
  return new Promise((res) => {
    const parts: Buffer[] = [];
    let error: string | undefined;
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    s.on('close', () => res({ data: Buffer.concat(parts), ...(error ? { error } : {}) }));
  });
}

/** Polls until `pred` returns something truthy (log lines are written after the client sees the close). */
async function waitFor<T>(what: string, pred: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Dial {
  dst: string;
  srcIp?: string;
  via: string;
}

interface Through {
  reply: string;
  /** The client socket's error: ECONNRESET when the proxy reset it. */
  error?: string;
  rec: AccessRecord;
}

interface Lab {
  a: ZtunnelInputs;
  b: ZtunnelInputs;
  logs: { a: Array<Record<string, unknown>>; b: Array<Record<string, unknown>> };
  dials: Dial[];
  /** Client side of a connection captured by node-a's outbound listener. */
  outbound(origDst: Address, peerIp: string, payload: string, ztunnel?: ZtunnelInputs): Promise<Through>;
  passthrough(origDst: Address, peerIp: string, payload: string): Promise<Through>;
}

function capture(lines: Array<Record<string, unknown>>): Logger {
  return pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
}

async function lab(t: Test): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'alt-zt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await createLabCa(join(dir, 'ca'), { lab: 'zt' });
  // Both ztunnels share one cert dir holding every HBONE pod's key: node-a's inbound also
  // stands in for the sidecar pod's own HBONE terminator below.
  const certDir = join(dir, 'certs');
  const hbone = plan.pods.map((p) => workloadFromPod(plan, p)).filter((w) => w.protocol === 'HBONE').map(workloadIdentity);
  await issueProxyCerts(join(dir, 'ca'), certDir, hbone);
  const tls: MeshTls = meshTlsFromCertDir(certDir);
  const dials: Dial[] = [];
  const servers: net.Server[] = [];
  t.teardown(() => servers.forEach((s) => s.close()));
  const listenOn = (srv: net.Server, host: string, port: number): Promise<void> =>
    new Promise((res, rej) => srv.once('error', rej).listen({ host, port }, () => res()));

  // Every pod's app on <podIP>:80: echo with the pod name in front, so replies tell who answered.
  for (const p of plan.pods.filter((p) => p.role === 'workload')) {
    const s = net.createServer({ allowHalfOpen: true }, (c) => {
      c.on('error', () => undefined);
      c.write(`${p.name}:`);
      c.pipe(c);
    });
    servers.push(s);
    await listenOn(s, p.ip, 80);
  }
  const ctxs = new Map<string, ZtunnelInputs>();
  const logs = { a: [] as Array<Record<string, unknown>>, b: [] as Array<Record<string, unknown>> };
  for (const [node, lines] of [['node-a', logs.a], ['node-b', logs.b]] as const) {
    const log = capture(lines);
    const real = createDialer('required', log);
    const dialer: Dialer = {
      mode: real.mode,
      connect(dst, srcIp) {
        dials.push({ dst: `${dst.ip}:${dst.port}`, ...(srcIp ? { srcIp } : {}), via: node });
        return real.connect(dst, srcIp);
      },
      connected(dst, srcIp) {
        dials.push({ dst: `${dst.ip}:${dst.port}`, ...(srcIp ? { srcIp } : {}), via: node });
        return real.connected(dst, srcIp);
      },
    };
    const cfg: ZtunnelConfig = ztunnelConfigFromPlan(plan, node, { certDir });
    const ctx = createProxyInputs('ztunnel', cfg, tls, log, { dialer, random: () => 0 });
    t.teardown(() => ctx.pool.close());
    ctxs.set(node, ctx);
    const inbound = createInbound(ctx);
    t.teardown(() => inbound.close());
    // Each HBONE-capable pod's :15008 is answered by its node's inbound (TPROXY in the lab).
    for (const p of plan.pods.filter((p) => p.node === node && p.role === 'workload' && p.mode !== 'none')) {
      const front = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => inbound.handle(s));
      servers.push(front);
      await listenOn(front, p.ip, 15008);
    }
  }
  const a = ctxs.get('node-a')!;
  const b = ctxs.get('node-b')!;

  const through = async (
    handler: (z: ZtunnelInputs, s: net.Socket, m: { origDst: Address; peer: Address }) => Promise<AccessRecord>,
    z: ZtunnelInputs, origDst: Address, peerIp: string, payload: string,
  ): Promise<Through> => {
    let recP!: Promise<AccessRecord>;
    const front = net.createServer({ allowHalfOpen: true }, (s) => {
      recP = handler(z, s, { origDst, peer: { ip: peerIp, port: 40000 } });
    });
    const port = await listen(front);
    const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const reply = readUntilClose(c);
    c.end(payload);
    const r = await reply;
    front.close();
    const rec = await recP;
    return { reply: r.data.toString(), ...(r.error ? { error: r.error } : {}), rec };
  };
  return {
    a, b, logs, dials,
    outbound: (origDst, peerIp, payload, z = a) => through(handleOutbound, z, origDst, peerIp, payload),
    passthrough: (origDst, peerIp, payload) => through(handleInboundPassthrough, b, origDst, peerIp, payload),
  };
}

t.test('cross-node: VIP -> HBONE -> remote ztunnel -> pod, with spoofed sources and access logs', async (t) => {
  const l = await lab(t);
  const { reply, rec } = await l.outbound({ ip: VIP, port: 8000 }, ip('sleep'), 'GET /');
  t.equal(reply, 'httpbin:GET /', 'httpbin answered through the tunnel');
  t.equal(rec.outcome, 'complete');
  t.same(l.dials.map((d) => `${d.via} ${d.dst} from ${d.srcIp}`), [
    `node-a ${ip('httpbin')}:15008 from ${ip('sleep')}`,
    `node-b ${ip('httpbin')}:80 from ${ip('sleep')}`,
  ], 'HBONE to the pod :15008, then the pod port; both spoofing the client pod IP');
  const out = l.logs.a.find((x) => x.msg === 'connection complete')!;
  t.match(out, {
    direction: 'outbound', 'src.addr': `${ip('sleep')}:40000`, 'src.workload': 'sleep', 'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
    'dst.addr': `${ip('httpbin')}:80`, 'dst.hbone_addr': `${ip('httpbin')}:15008`, 'dst.service': 'httpbin.default.svc.cluster.local',
    'dst.workload': 'httpbin', 'dst.identity': 'spiffe://cluster.local/ns/default/sa/httpbin', bytes_sent: 5, bytes_recv: 13,
  });
  // The inbound log is written when its copy finishes, which can trail the client's close.
  t.match(await waitFor('node-b connection complete', () => l.logs.b.find((x) => x.msg === 'connection complete')), {
    direction: 'inbound', 'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep', 'src.workload': 'sleep',
    'dst.workload': 'httpbin', 'dst.addr': `${ip('httpbin')}:80`, bytes_sent: 5, bytes_recv: 13,
  });
  const labels = { source_workload: 'sleep', destination_workload: 'httpbin', destination_service: 'httpbin.default.svc.cluster.local' };
  t.equal(l.a.metrics.value('istio_tcp_connections_opened_total', { ...labels, reporter: 'source' }), 1);
  t.equal(l.a.metrics.value('istio_tcp_received_bytes_total', labels), 5);
  t.equal(l.a.metrics.value('istio_tcp_sent_bytes_total', labels), 13);
  t.equal(l.b.metrics.value('istio_tcp_connections_closed_total', { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/default/sa/sleep' }), 1);

  const second = await l.outbound({ ip: ip('httpbin'), port: 80 }, ip('sleep'), 'again');
  t.equal(second.reply, 'httpbin:again');
  t.equal(l.a.pool.stats.sessionsOpened, 1, 'the second connection reused the pooled HBONE session');
  t.equal(l.a.pool.stats.reused, 1);
});

t.test('RBAC at the destination ztunnel: 401 resets the client connection', async (t) => {
  const l = await lab(t);
  // httpbin allows only sleep on port 80: local (same SA rules, other identity) is refused.
  const r = await l.outbound({ ip: ip('httpbin'), port: 80 }, ip('local'), 'hi');
  t.equal(r.reply, '', 'no bytes reach the client');
  t.equal(r.error, 'ECONNRESET', 'the client sees a reset, as with Istio\'s ztunnel (curl exit 56)');
  t.match(r.rec, { outcome: 'failed', status: 401 });
  t.match(await waitFor('node-b connection denied', () => l.logs.b.find((x) => x.msg === 'connection denied')), {
    direction: 'inbound', 'src.identity': 'spiffe://cluster.local/ns/default/sa/local', status: 401,
    reason: 'no ALLOW policy matched (default/httpbin-allow-sleep)',
  });
  t.equal(l.b.metrics.value('istio_tcp_connections_denied_total', { response_flags: 'DENY', destination_workload: 'httpbin' }), 1);
  t.notOk(l.dials.some((d) => d.dst === `${ip('httpbin')}:80`), 'the pod was never connected');
  // Port 81 on httpbin: DENY policy matches first.
  const r81 = await l.outbound({ ip: ip('httpbin'), port: 81 }, ip('sleep'), 'x');
  t.match(r81.rec, { status: 401 });
  t.equal(r81.error, 'ECONNRESET');
  t.match(await waitFor('deny-81 log line', () => l.logs.b.find((x) => x.msg === 'connection denied' && x.policy === 'default/deny-81')), {
    status: 401, reason: 'denied by DENY policy default/deny-81',
  }, 'the destination names the DENY policy');
});

t.test('same-node fast path: RBAC in the source ztunnel, no HBONE', async (t) => {
  const l = await lab(t);
  const ok = await l.outbound({ ip: ip('local'), port: 80 }, ip('sleep'), 'hey');
  t.equal(ok.reply, 'local:hey');
  t.match(ok.rec, { via: 'direct-local', outcome: 'complete', spoofed: true });
  t.equal(l.a.pool.stats.sessionsOpened, 0, 'no HBONE session');
  const denied = await l.outbound({ ip: ip('local'), port: 81 }, ip('sleep'), 'hey');
  t.equal(denied.reply, '');
  t.equal(denied.error, 'ECONNRESET', 'a local deny resets too');
  t.match(denied.rec, { outcome: 'denied', policy: 'default/deny-81' });
});

t.test('sidecar on the same node gets HBONE; TCP workloads and unknown IPs plain TCP', async (t) => {
  const l = await lab(t);
  // No sidecar proxy here: node-a's inbound stands in for its Envoy connect_terminate.
  const sc = await l.outbound({ ip: ip('sidecar'), port: 80 }, ip('sleep'), 's');
  t.equal(sc.reply, 'sidecar:s');
  t.match(sc.rec, { via: 'hbone', dst: { hboneAddr: `${ip('sidecar')}:15008` } });
  const legacy = await l.outbound({ ip: ip('legacy'), port: 80 }, ip('sleep'), 'l');
  t.equal(legacy.reply, 'legacy:l');
  t.match(legacy.rec, { via: 'tcp' });
  const ext = await l.outbound({ ip: '127.78.0.1', port: 80 }, ip('sleep'), 'e');
  t.match(ext.rec, { via: 'passthrough', outcome: 'failed' }, 'passthrough to an address nobody serves fails');
  t.ok(l.dials.some((d) => d.dst === '127.78.0.1:80' && d.srcIp === ip('sleep')), 'passthrough also spoofs');
});

t.test('refusals: unknown source, self call, target down (503)', async (t) => {
  const l = await lab(t);
  const unknown = await l.outbound({ ip: ip('httpbin'), port: 80 }, '10.244.7.7', 'x');
  t.match(unknown.rec, { outcome: 'failed', reason: 'unknown source workload 10.244.7.7' });
  const self = await l.outbound({ ip: l.a.cfg.instanceIp, port: 15001 }, ip('sleep'), 'x');
  t.match(self.rec, { outcome: 'failed', reason: /SelfCall/ });
  // Nothing listens on sidecar:82; its HBONE server answers 503.
  const down = await l.outbound({ ip: ip('sidecar'), port: 82 }, ip('sleep'), 'x');
  t.equal(down.reply, '');
  t.match(down.rec, { outcome: 'failed', status: 503 });
});

t.test('inbound passthrough (15006): RBAC without identity', async (t) => {
  const l = await lab(t);
  // httpbin's ALLOW needs the sleep principal: plaintext has no identity -> denied.
  const denied = await l.passthrough({ ip: ip('httpbin'), port: 80 }, ip('legacy'), 'p');
  t.equal(denied.reply, '');
  t.equal(denied.error, 'ECONNRESET', 'a passthrough deny resets');
  t.match(denied.rec, { direction: 'inbound_passthrough', outcome: 'denied' });
  const unknown = await l.passthrough({ ip: '127.77.1.99', port: 80 }, ip('legacy'), 'p');
  t.match(unknown.rec, { outcome: 'failed', reason: 'unknown destination 127.77.1.99' });
});

const get = (port: number, path: string): Promise<{ status: number; body: string }> => new Promise((res, rej) => {
  http.get({ host: '127.0.0.1', port, path }, (r) => {
    let body = '';
    r.on('data', (d) => (body += d));
    r.on('end', () => res({ status: r.statusCode!, body }));
  }).on('error', rej);
});

/** node-a's ztunnel in-process on random ports (capture listeners on 0.0.0.0, so pod IPs on lo reach them). */
async function runNodeA(t: Test, lines: Array<Record<string, unknown>>, edit: (c: ZtunnelConfig) => void = () => undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'alt-zt-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await createLabCa(join(dir, 'ca'));
  const certDir = join(dir, 'certs-node-a');
  await issueProxyCerts(join(dir, 'ca'), certDir, ztunnelIdentities(plan, 'node-a'));
  const cfg = ztunnelConfigFromPlan(plan, 'node-a', { certDir });
  cfg.listen = { host: '0.0.0.0', outbound: 0, inbound: 0, inboundPlaintext: 0, admin: 0, stats: 0, readiness: 0, dns: 0 };
  cfg.dnsCapture = true;
  edit(cfg);
  const file = join(dir, 'cfg.json');
  writeFileSync(file, JSON.stringify(cfg));
  const zt = await startZtunnel(cfg, capture(lines), { configFile: file });
  t.teardown(() => zt.close());
  // The client side: sleep's certificate, issued to a "remote ztunnel" of its own.
  const clientCerts = join(dir, 'certs-client');
  await issueProxyCerts(join(dir, 'ca'), clientCerts, [{ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' }]);
  const pool = new HbonePool({
    tls: meshTlsFromCertDir(clientCerts),
    dial: (a) => net.connect({ host: a.ip, port: zt.ports.inbound, localAddress: ip('sleep') }),
  });
  t.teardown(() => pool.close());
  /** Rewrites the config file the way the lab does: a temp file renamed over it. */
  const rewrite = (change: (c: ZtunnelConfig) => void): void => {
    change(cfg);
    writeFileSync(`${file}.tmp`, JSON.stringify(cfg));
    renameSync(`${file}.tmp`, file);
  };
  return { zt, cfg, pool, rewrite, dir };
}

const SLEEP_ID = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' };
const LOCAL_ID = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'local' };

t.test('startZtunnel: listeners, admin, metrics, readiness', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const { zt, pool } = await runNodeA(t, lines);
  t.same(await get(zt.ports.readiness, '/healthz/ready'), { status: 200, body: 'ready\n' });
  const dump = JSON.parse((await get(zt.ports.admin, '/config_dump')).body);
  t.equal(dump.workloads[ip('sleep')].serviceAccount, 'sleep', 'config_dump keys workloads by IP');
  t.equal(dump.services.find((s: { name: string }) => s.name === 'httpbin').vips[0], VIP);
  t.same(dump.policies.map((p: { name: string }) => p.name), ['httpbin-allow-sleep', 'deny-81']);
  t.match(dump.config, { version: 1, hash: /^[0-9a-f]{16}$/ }, 'config_dump shows the config version');
  // On loopback the outbound listener sees 127.0.0.1 as the client: not a workload -> closed.
  const c = net.connect({ host: '127.0.0.1', port: zt.ports.outbound });
  c.end('x');
  t.equal((await readAll(c)).length, 0);
  t.ok(await waitFor('unknown source log', () => lines.some((x) => x.msg === 'connection failed' && x.reason === 'unknown source workload 127.0.0.1')));
  t.match(lines.find((x) => x.msg === 'ztunnel ready'), {
    instanceIp: ip('ztunnel-node-a'), origSrc: 'best-effort',
    identities: ['spiffe://cluster.local/ns/default/sa/sleep', 'spiffe://cluster.local/ns/default/sa/local'],
  }, 'the ztunnel holds keys for its node\'s ambient pods only (not the sidecar pod, not the CA)');

  // Metrics: a series with the right labels whose value moved, not just the HELP text.
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((r) => echo.listen(80, ip('local'), () => r()));
  t.teardown(() => echo.close());
  const labels = { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/default/sa/sleep', destination_workload: 'local', response_flags: '-' };
  const before = seriesValue((await get(zt.ports.stats, '/metrics')).body, 'istio_tcp_connections_opened_total', labels);
  const { stream } = await pool.connect({ source: SLEEP_ID, expected: LOCAL_ID, address: { ip: ip('local'), port: 15008 } }, `${ip('local')}:80`);
  const reply = readUntilClose(stream as unknown as net.Socket);
  stream.end('ping');
  t.equal((await reply).data.toString(), 'ping', 'HBONE to the local pod through the running ztunnel');
  const after = seriesValue((await get(zt.ports.stats, '/metrics')).body, 'istio_tcp_connections_opened_total', labels);
  t.equal(before, 0);
  t.equal(after, 1, 'istio_tcp_connections_opened_total{reporter="destination",source_principal=sleep,destination_workload="local"} moved 0 -> 1');
  const bytes = await waitFor('received bytes counted', async () => seriesValue((await get(zt.ports.stats, '/metrics')).body, 'istio_tcp_received_bytes_total', labels));
  t.equal(bytes, 4, 'the 4 request bytes are counted');

  // An identity this ztunnel holds no key for fails clearly.
  await t.rejects(zt.ctx.tls.certFor({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'httpbin' }), {
    name: 'NoCertificateError', message: /no certificate for spiffe:\/\/cluster.local\/ns\/default\/sa\/httpbin: this proxy holds keys only for/,
  });

  // DNS: a known Service hostname resolves to its VIP.
  const { Packet } = await import('dns2');
  const dgram = await import('node:dgram');
  const q = new Packet();
  q.header.id = 42;
  q.header.rd = 1;
  q.questions.push({ name: 'httpbin.default.svc.cluster.local', type: Packet.TYPE.A, class: Packet.CLASS.IN } as never);
  const sock = dgram.createSocket('udp4');
  const answer = await new Promise<Buffer>((res) => {
    sock.once('message', res);
    sock.send(q.toBuffer(), zt.ports.dns!, '127.0.0.1');
  });
  sock.close();
  const parsed = Packet.parse(answer);
  t.equal(parsed.answers[0]?.address, VIP, 'DNS answers the Service VIP');
});

t.test('config reload: a new policy applies to new connections, open ones stay open', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const { zt, pool, rewrite, dir } = await runNodeA(t, lines);
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((r) => echo.listen(80, ip('local'), () => r()));
  t.teardown(() => echo.close());
  const key = { source: SLEEP_ID, expected: LOCAL_ID, address: { ip: ip('local'), port: 15008 } };

  // Connection A, opened under version 1: still open across the reload.
  const a = (await pool.connect(key, `${ip('local')}:80`)).stream;
  const chunks: string[] = [];
  a.on('data', (d: Buffer) => chunks.push(d.toString()));
  a.write('one;');
  await waitFor('first echo', () => chunks.join('') === 'one;');

  rewrite((c) => c.policies.push({
    name: 'deny-sleep', namespace: 'default', scope: 'Namespace', action: 'Deny',
    groups: [[[{ principals: [{ Exact: 'cluster.local/ns/default/sa/sleep' }] }]]],
  }));
  const reloaded = await waitFor('config reloaded', () => lines.find((x) => x.msg === 'config reloaded'));
  t.match(reloaded, { version: 2, trigger: 'file', hash: /^[0-9a-f]{16}$/ }, 'the file change was picked up and logged with its version');
  const dump = JSON.parse((await get(zt.ports.admin, '/config_dump')).body);
  t.equal(dump.config.version, 2, 'config_dump shows version 2');
  t.ok(dump.policies.some((p: { name: string }) => p.name === 'deny-sleep'), 'and the new policy');

  // Connection B, new: denied by the new policy, and the log line names it.
  const b = await pool.connect(key, `${ip('local')}:80`).then(() => 200, (e: HboneError) => e.status);
  t.equal(b, 401, 'a new connection gets 401');
  t.match(await waitFor('denied line', () => lines.find((x) => x.msg === 'connection denied')), {
    policy: 'default/deny-sleep', reason: 'denied by DENY policy default/deny-sleep', status: 401,
  });

  // A still carries bytes both ways.
  a.write('two;');
  await waitFor('echo after reload', () => chunks.join('') === 'one;two;');
  t.equal(chunks.join(''), 'one;two;', 'the connection opened before the reload stays open');
  a.end();

  const hup = zt.reload('SIGHUP');
  t.match(hup, { applied: true, version: { version: 3 } }, 'SIGHUP reloads even unchanged content (certificates may have changed)');
  t.match(lines.filter((x) => x.msg === 'config reloaded').pop(), { version: 3, trigger: 'SIGHUP' });

  // A file that does not parse is refused, and the running config kept.
  writeFileSync(join(dir, 'cfg.json.tmp'), '{"node": ');
  renameSync(join(dir, 'cfg.json.tmp'), join(dir, 'cfg.json'));
  t.match(await waitFor('reload failed', () => lines.find((x) => x.msg === 'config reload failed; keeping the running config')), {
    trigger: 'file', version: 3, err: /not JSON/,
  });
  t.equal(JSON.parse((await get(zt.ports.admin, '/config_dump')).body).config.version, 3, 'still version 3');
});

t.test('graceful restart: a successor binds the same ports; the drained one GOAWAYs, keeps its open tunnel, ends with it', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const { zt, cfg, pool } = await runNodeA(t, lines);
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((r) => echo.listen(80, ip('local'), () => r()));
  t.teardown(() => echo.close());
  const target = { source: SLEEP_ID, expected: LOCAL_ID, address: { ip: ip('local'), port: 15008 } };
  const { stream } = await pool.connect(target, `${ip('local')}:80`);
  const echoed = (s: NodeJS.ReadWriteStream, text: string): Promise<string> => new Promise((r) => { s.once('data', (d) => r(String(d))); s.write(text); });
  t.equal(await echoed(stream, 'before'), 'before', 'a tunnel open through the old ztunnel');

  // Every listener is SO_REUSEPORT: the successor binds the very ports the old one holds.
  const nextLines: Array<Record<string, unknown>> = [];
  const next = await startZtunnel({ ...cfg, listen: { ...cfg.listen, ...zt.ports } }, capture(nextLines));
  t.teardown(() => next.close());
  t.same(next.ports, zt.ports, 'same ports, both listening');

  let drained = false;
  const drain = zt.drain().then((r) => { drained = true; return r; });
  t.ok(await waitFor('draining log', () => lines.find((x) => x.msg === 'draining: stopped accepting, waiting for open connections to end')));
  // The old one sent GOAWAY: the pool opens a new session, which only the successor can accept now.
  const fresh = await pool.connect(target, `${ip('local')}:80`);
  t.equal(fresh.reused, false, 'a new session after the GOAWAY');
  t.equal(await echoed(fresh.stream, 'new'), 'new', 'a new tunnel works');
  t.equal(await echoed(stream, 'after'), 'after', 'the old tunnel still carries data while draining');
  t.notOk(drained, 'the drain waits for it');
  stream.end();
  const r = await drain;
  fresh.stream.end();
  // The access log line is written when the connection ends.
  t.ok(await waitFor('the successor to log it', () => nextLines.find((x) => x.direction === 'inbound')), 'the new tunnel went through the successor');
  t.equal(lines.filter((x) => x.direction === 'inbound').length, 1, 'the old ztunnel carried only the first one');
  t.match(r.open, { inbound: 1, outbound: 0, inboundPlaintext: 0 }, 'it was carrying one HBONE connection when it stopped accepting');
  t.same(await get(next.ports.readiness, '/healthz/ready'), { status: 200, body: 'ready\n' }, 'the successor answers on the side doors');
});
