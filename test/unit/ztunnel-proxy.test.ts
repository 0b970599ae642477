// The ztunnel listeners on loopback. Pods get 127.77.<node>.<n> addresses: every one is a
// local address on lo, so apps listen on their real pod IP, HBONE servers on <podIP>:15008
// (their sockets' local address is the original destination, as under TPROXY) and the real
// dialer binds the client pod IP as source (IP_TRANSPARENT "spoofing" of a local address).
// Only the outbound side needs its original destination injected: nothing TPROXYs here.
import t, { type Test } from 'tap';
import net from 'node:net';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createLabCa } from '../../src/mesh/ca.js';
import { meshTlsFromCa, type MeshTls } from '../../src/mesh/tls.js';
import type { Address } from '../../src/mesh/hbone-server.js';
import { WorkloadStore } from '../../src/mesh/workloads.js';
import { planAddresses, podUid } from '../../src/topology/address-plan.js';
import type { PodSpec, Topology } from '../../src/topology/types.js';
import { ztunnelConfigFromPlan } from '../../src/ztunnel/config-from-plan.js';
import type { ZtunnelConfig } from '../../src/ztunnel/config.js';
import { createContext, type ZtunnelContext } from '../../src/ztunnel/context.js';
import { createDialer, type Dialer } from '../../src/ztunnel/dialer.js';
import { buildOutboundRequest, handleOutbound } from '../../src/ztunnel/outbound.js';
import { createInbound } from '../../src/ztunnel/inbound.js';
import { handleInboundPassthrough } from '../../src/ztunnel/inbound-passthrough.js';
import { startZtunnel } from '../../src/ztunnel/ztunnel.js';
import type { AccessRecord } from '../../src/ztunnel/logs.js';

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
  return new Promise((res) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', () => undefined);
    s.on('close', () => res(Buffer.concat(parts)));
  });
}

interface Dial {
  dst: string;
  srcIp?: string;
  via: string;
}

interface Lab {
  a: ZtunnelContext;
  b: ZtunnelContext;
  logs: { a: Array<Record<string, unknown>>; b: Array<Record<string, unknown>> };
  dials: Dial[];
  /** Client side of a connection captured by node-a's outbound listener. */
  outbound(origDst: Address, peerIp: string, payload: string, ztunnel?: ZtunnelContext): Promise<{ reply: string; rec: AccessRecord }>;
  passthrough(origDst: Address, peerIp: string, payload: string): Promise<{ reply: string; rec: AccessRecord }>;
}

function capture(lines: Array<Record<string, unknown>>): Logger {
  return pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
}

async function lab(t: Test): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'alt-zt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createLabCa(join(dir, 'ca'), { lab: 'zt' });
  const tls: MeshTls = meshTlsFromCa(ca);
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
  const ctxs = new Map<string, ZtunnelContext>();
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
    const cfg: ZtunnelConfig = ztunnelConfigFromPlan(plan, node, { caDir: join(dir, 'ca') });
    const ctx = createContext(cfg, tls, log, { dialer, random: () => 0 });
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
    handler: (z: ZtunnelContext, s: net.Socket, m: { origDst: Address; peer: Address }) => Promise<AccessRecord>,
    z: ZtunnelContext, origDst: Address, peerIp: string, payload: string,
  ): Promise<{ reply: string; rec: AccessRecord }> => {
    let recP!: Promise<AccessRecord>;
    const front = net.createServer({ allowHalfOpen: true }, (s) => {
      recP = handler(z, s, { origDst, peer: { ip: peerIp, port: 40000 } });
    });
    const port = await listen(front);
    const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const reply = readAll(c);
    c.end(payload);
    const r = (await reply).toString();
    front.close();
    const rec = await recP;
    return { reply: r, rec };
  };
  return {
    a, b, logs, dials,
    outbound: (origDst, peerIp, payload, z = a) => through(handleOutbound, z, origDst, peerIp, payload),
    passthrough: (origDst, peerIp, payload) => through(handleInboundPassthrough, b, origDst, peerIp, payload),
  };
}

t.test('outbound decisions (build_request)', async (t) => {
  const cfg = ztunnelConfigFromPlan(plan, 'node-a', { caDir: '/x' });
  const store = new WorkloadStore(cfg);
  const req = (ipp: string, port: number) => buildOutboundRequest(store, cfg, { ip: ipp, port });
  t.match(req(VIP, 8000), { kind: 'hbone', hboneAddr: { ip: ip('httpbin'), port: 15008 }, authority: `${ip('httpbin')}:80`, target: { port: 80 } }, 'VIP -> endpoint pod, target port');
  t.match(req(ip('httpbin'), 80), { kind: 'hbone', authority: `${ip('httpbin')}:80`, expected: { serviceAccount: 'httpbin' } });
  t.match(req(ip('local'), 80), { kind: 'direct-local' }, 'same node, not native HBONE: fast path');
  t.match(req(ip('sidecar'), 80), { kind: 'hbone', hboneAddr: { ip: ip('sidecar'), port: 15008 } }, 'same node sidecar: HBONE to the pod');
  t.match(req(ip('legacy'), 80), { kind: 'tcp', target: { ip: ip('legacy'), port: 80 } }, 'TCP workload: plain');
  t.match(req('93.184.216.34', 443), { kind: 'passthrough', target: { ip: '93.184.216.34', port: 443 } });
  t.match(req(VIP, 9999), { kind: 'passthrough' }, 'VIP, unknown port: passthrough');
  t.throws(() => req(cfg.instanceIp, 15008), { name: 'OutboundError', message: /SelfCall/ }, 'SelfCall');

  // Uniformly random endpoint: with two endpoints, random() picks each.
  const two = new WorkloadStore({ ...cfg, services: cfg.services.map((s) => (s.name === 'httpbin' ? { ...s, endpoints: [ip('httpbin'), ip('local')] } : s)) });
  t.equal(two.resolveVip(VIP, 8000, () => 0)!.workload.name, 'httpbin');
  t.equal(two.resolveVip(VIP, 8000, () => 0.99)!.workload.name, 'local');
  const unhealthy = new WorkloadStore({ ...cfg, workloads: cfg.workloads.map((w) => (w.name === 'httpbin' ? { ...w, status: 'Unhealthy' as const } : w)) });
  t.equal(unhealthy.resolveVip(VIP, 8000), undefined, 'no healthy endpoint');

  // Waypoint: HBONE to the waypoint, authority keeps the VIP.
  const withWp = new WorkloadStore({
    ...cfg, workloads: cfg.workloads.map((w) => (w.name === 'httpbin' ? { ...w, waypointAddresses: [ip('legacy')] } : w)),
  });
  t.match(buildOutboundRequest(withWp, cfg, { ip: VIP, port: 8000 }), {
    kind: 'hbone', hboneAddr: { ip: ip('legacy'), port: 15008 }, authority: `${VIP}:8000`, expected: { namespace: 'legacy', serviceAccount: 'default' },
  });
});

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
  await new Promise((r) => setTimeout(r, 50));
  t.match(l.logs.b.find((x) => x.msg === 'connection complete'), {
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

t.test('RBAC at the destination ztunnel: 401 closes the client connection', async (t) => {
  const l = await lab(t);
  // httpbin allows only sleep on port 80: local (same SA rules, other identity) is refused.
  const r = await l.outbound({ ip: ip('httpbin'), port: 80 }, ip('local'), 'hi');
  t.equal(r.reply, '', 'no bytes reach the client');
  t.match(r.rec, { outcome: 'failed', status: 401 });
  await new Promise((res) => setTimeout(res, 20));
  t.match(l.logs.b.find((x) => x.msg === 'connection denied'), {
    direction: 'inbound', 'src.identity': 'spiffe://cluster.local/ns/default/sa/local', status: 401,
    reason: 'no ALLOW policy matched (default/httpbin-allow-sleep)',
  });
  t.equal(l.b.metrics.value('istio_tcp_connections_denied_total', { response_flags: 'DENY', destination_workload: 'httpbin' }), 1);
  t.notOk(l.dials.some((d) => d.dst === `${ip('httpbin')}:80`), 'the pod was never connected');
  // Port 81 on httpbin: DENY policy matches first.
  const r81 = await l.outbound({ ip: ip('httpbin'), port: 81 }, ip('sleep'), 'x');
  t.match(r81.rec, { status: 401 });
});

t.test('same-node fast path: RBAC in the source ztunnel, no HBONE', async (t) => {
  const l = await lab(t);
  const ok = await l.outbound({ ip: ip('local'), port: 80 }, ip('sleep'), 'hey');
  t.equal(ok.reply, 'local:hey');
  t.match(ok.rec, { via: 'direct-local', outcome: 'complete', spoofed: true });
  t.equal(l.a.pool.stats.sessionsOpened, 0, 'no HBONE session');
  const denied = await l.outbound({ ip: ip('local'), port: 81 }, ip('sleep'), 'hey');
  t.equal(denied.reply, '');
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
  t.match(denied.rec, { direction: 'inbound_passthrough', outcome: 'denied' });
  const unknown = await l.passthrough({ ip: '127.77.1.99', port: 80 }, ip('legacy'), 'p');
  t.match(unknown.rec, { outcome: 'failed', reason: 'unknown destination 127.77.1.99' });
});

t.test('startZtunnel: listeners, admin, metrics, readiness', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-zt-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await createLabCa(join(dir, 'ca'));
  const cfg = ztunnelConfigFromPlan(plan, 'node-a', { caDir: join(dir, 'ca') });
  cfg.listen = { host: '127.0.0.1', outbound: 0, inbound: 0, inboundPlaintext: 0, admin: 0, stats: 0, readiness: 0, dns: 0 };
  cfg.dnsCapture = true;
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  const lines: Array<Record<string, unknown>> = [];
  const zt = await startZtunnel(cfg, capture(lines));
  t.teardown(() => zt.close());
  const get = (port: number, path: string): Promise<{ status: number; body: string }> => new Promise((res, rej) => {
    http.get({ host: '127.0.0.1', port, path }, (r) => {
      let body = '';
      r.on('data', (d) => (body += d));
      r.on('end', () => res({ status: r.statusCode!, body }));
    }).on('error', rej);
  });
  t.same(await get(zt.ports.readiness, '/healthz/ready'), { status: 200, body: 'ready\n' });
  const dump = JSON.parse((await get(zt.ports.admin, '/config_dump')).body);
  t.equal(dump.workloads[ip('sleep')].serviceAccount, 'sleep', 'config_dump keys workloads by IP');
  t.equal(dump.services.find((s: { name: string }) => s.name === 'httpbin').vips[0], VIP);
  t.same(dump.policies.map((p: { name: string }) => p.name), ['httpbin-allow-sleep', 'deny-81']);
  // On loopback the outbound listener sees 127.0.0.1 as the client: not a workload -> closed.
  const c = net.connect({ host: '127.0.0.1', port: zt.ports.outbound });
  c.end('x');
  t.equal((await readAll(c)).length, 0);
  await new Promise((r) => setTimeout(r, 20));
  t.ok(lines.some((x) => x.msg === 'connection failed' && x.reason === 'unknown source workload 127.0.0.1'));
  const metrics = (await get(zt.ports.stats, '/metrics')).body;
  t.match(metrics, /# TYPE istio_tcp_connections_opened_total counter/);
  t.match(metrics, /# TYPE istio_tcp_connections_denied_total counter/);
  t.match(lines.find((x) => x.msg === 'ztunnel ready'), { instanceIp: ip('ztunnel-node-a'), origSrc: 'best-effort' });
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
