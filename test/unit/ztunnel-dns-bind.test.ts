// ztunnel's DNS proxy binds UDP and TCP on one port number. A TCP socket already on that port
// must fail the start cleanly: the UDP socket it bound first is released (a leaked one kept a
// test process alive until tap's timeout), and with port 0 another pick is tried instead.
import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { pino } from 'pino';
import { startDns } from '../../src/ztunnel/dns.js';
import { Metrics } from '../../src/proxy/metrics.js';
import type { ZtunnelInputs } from '../../src/ztunnel/config.js';

const z = { log: pino({ level: 'silent' }), metrics: new Metrics(), xds: { store: { state: { services: [] } } } } as unknown as ZtunnelInputs;

const udpBindable = (port: number): Promise<boolean> => new Promise((res) => {
  const s = dgram.createSocket('udp4');
  s.once('error', () => { s.close(); res(false); });
  s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
});

t.test('a fixed port whose TCP side is taken: EADDRINUSE, and the UDP socket is released', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  for (const reusePort of [false, true]) {
    await t.rejects(startDns(z, '127.0.0.1', port, undefined, { reusePort }), { message: /EADDRINUSE/ }, `reusePort=${reusePort}`);
    t.ok(await udpBindable(port), `UDP ${port} is free again (reusePort=${reusePort})`);
  }
});

t.test('port 0: UDP and TCP on one port, whatever the kernel picks first', async (t) => {
  for (let i = 0; i < 20; i++) {
    const dns = await startDns(z, '127.0.0.1', 0, undefined, { reusePort: true });
    const probe = net.connect({ host: '127.0.0.1', port: dns.port });
    await new Promise<void>((res, rej) => probe.once('connect', () => res()).once('error', rej));
    probe.destroy();
    t.notOk(await udpBindable(dns.port), `UDP ${dns.port} is held by the proxy`);
    await dns.close();
  }
});
