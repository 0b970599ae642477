// The cluster DNS on loopback, asked the way pods ask: c-ares (node:dns) over UDP, and TCP.
import t from 'tap';
import { captureLogger } from './capture-logger.js';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TCPClient, UDPClient } from 'dns2';
import { startDnsServer } from '../../src/apps/cluster-dns.js';
import { buildDnsRecords } from '../../src/apps/dns-records.js';


const errCode = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e.code,
  );

t.test('cluster DNS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-apps-dns-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dns.json');
  writeFileSync(file, JSON.stringify(buildDnsRecords([
    { name: 'httpbin', namespace: 'default', vip: '10.96.0.11' },
    { name: 'echo', namespace: 'default', vip: '10.96.0.12' },
  ])));
  const { log, lines } = captureLogger();
  const dns = await startDnsServer({ port: 0, host: '127.0.0.1', configFile: file, log });
  t.teardown(() => dns.close());
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);

  t.test('A for a Service name, TTL 5', async (t) => {
    t.same(await resolver.resolve4('httpbin.default.svc.cluster.local', { ttl: true }), [{ address: '10.96.0.11', ttl: 5 }]);
    t.same(await resolver.resolve4('Echo.Default.SVC.cluster.local'), ['10.96.0.12'], 'case-insensitive');
    const l = lines.find((x) => x.qname === 'httpbin.default.svc.cluster.local');
    t.match(l, { msg: 'query', qtype: 'A', rcode: 'NOERROR', answers: ['10.96.0.11'], transport: 'udp', client: /^127\.0\.0\.1:\d+$/ }, 'query logged');
  });

  t.test('NXDOMAIN for unknown names, in and out of the cluster domain', async (t) => {
    t.equal(await errCode(resolver.resolve4('nope.default.svc.cluster.local')), 'ENOTFOUND');
    t.equal(await errCode(resolver.resolve4('example.com')), 'ENOTFOUND');
    const raw = await UDPClient({ dns: '127.0.0.1', port: dns.port, timeout: 1000 })('nope.default.svc.cluster.local', 'A');
    t.equal(raw.header.rcode, 3, 'rcode NXDOMAIN on the wire');
    t.equal(raw.header.aa, 1, 'authoritative for the cluster zone');
    t.match(raw.authorities, [{ type: 6, name: 'cluster.local', primary: 'ns.dns.cluster.local', minimum: 5 }], 'SOA in authority');
  });

  t.test('AAAA for a known name is NODATA, so glibc does not wait', async (t) => {
    t.equal(await errCode(resolver.resolve6('httpbin.default.svc.cluster.local')), 'ENODATA');
    const raw = await UDPClient({ dns: '127.0.0.1', port: dns.port, timeout: 1000 })('httpbin.default.svc.cluster.local', 'AAAA');
    t.equal(raw.header.rcode, 0, 'NOERROR');
    t.equal(raw.answers.length, 0, 'no answers');
  });

  t.test('TCP on the same port', async (t) => {
    const res = await TCPClient({ dns: '127.0.0.1', port: dns.port })('httpbin.default.svc.cluster.local', 'A');
    t.equal(res.header.rcode, 0);
    t.match(res.answers, [{ name: 'httpbin.default.svc.cluster.local', type: 1, ttl: 5, address: '10.96.0.11' }]);
    t.ok(lines.some((x) => x.transport === 'tcp' && x.rcode === 'NOERROR'), 'TCP query logged');
  });

  t.test('reload picks up new records; a bad file keeps the old ones', async (t) => {
    writeFileSync(file, JSON.stringify(buildDnsRecords([{ name: 'ratings', namespace: 'bookinfo', vip: '10.96.0.40' }])));
    dns.reload();
    t.same(await resolver.resolve4('ratings.bookinfo.svc.cluster.local'), ['10.96.0.40']);
    t.equal(await errCode(resolver.resolve4('httpbin.default.svc.cluster.local')), 'ENOTFOUND', 'removed name is gone');
    writeFileSync(file, '{ not json');
    t.throws(() => dns.reload());
    t.same(await resolver.resolve4('ratings.bookinfo.svc.cluster.local'), ['10.96.0.40'], 'still serving the last good config');
  });
});

t.test('a config object instead of a file, and close() with an open TCP connection', async (t) => {
  const dns = await startDnsServer({ port: 0, host: '127.0.0.1', config: buildDnsRecords([{ name: 'a', namespace: 'b', vip: '10.96.1.1' }]) });
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
  t.same(await resolver.resolve4('a.b.svc.cluster.local'), ['10.96.1.1']);
  const { connect } = await import('node:net');
  const sock = connect({ host: '127.0.0.1', port: dns.port });
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  const started = Date.now();
  await dns.close();
  t.ok(Date.now() - started < 500, `closed in ${Date.now() - started} ms`);
});
