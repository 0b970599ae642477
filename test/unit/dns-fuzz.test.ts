// Malformed, truncated, oversized and random DNS queries over UDP and TCP against the two DNS
// servers of the lab, on loopback: the cluster DNS (apps/cluster-dns.ts, the CoreDNS pod) and
// ztunnel's DNS proxy (ztunnel/dns.ts). Neither crashes or hangs; a query with a readable
// header gets FORMERR (UDP), anything else is dropped (TCP: the connection closed); each is
// counted; and a valid query is answered afterwards. FUZZ_SEED=<n> replays the random part.
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { Packet } from 'dns2';
import { pino } from 'pino';
import { startDnsServer } from '../../src/apps/cluster-dns.js';
import { buildDnsRecords } from '../../src/apps/dns-records.js';
import { startDns } from '../../src/ztunnel/dns.js';
import { Metrics } from '../../src/proxy/metrics.js';
import type { ZtunnelInputs } from '../../src/ztunnel/config.js';
import { seededRng, type Rng } from './hbone-hostile-random.js';

const NAME = 'httpbin.default.svc.cluster.local';
const VIP = '10.96.0.11';

function query(name: string, id = 0x4242): Buffer {
  const p = new Packet();
  p.header.id = id;
  p.header.rd = 1;
  p.questions.push({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN } as never);
  return p.toBuffer();
}

/** Hand-made broken queries: each names what is wrong with it. */
function brokenQueries(): Array<[string, Buffer]> {
  const valid = query(NAME, 0x1111);
  const header = (qd: number, id = 0x2222): Buffer => Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, qd, 0, 0, 0, 0, 0, 0]);
  return [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0x12])],
    ['11 bytes (short header)', valid.subarray(0, 11)],
    ['header announcing a question that is not there', header(1)],
    ['question cut mid-label', valid.subarray(0, 20)],
    ['label longer than the packet', Buffer.concat([header(1), Buffer.from([63, 0x61, 0x62])])],
    ['compression pointer to itself', Buffer.concat([header(1), Buffer.from([0xc0, 12, 0, 1, 0, 1])])],
    ['compression pointers in a loop', Buffer.concat([header(1), Buffer.from([0xc0, 14, 0xc0, 12, 0, 1, 0, 1])])],
    ['pointer past the end', Buffer.concat([header(1), Buffer.from([0xc0, 0xff, 0, 1, 0, 1])])],
    ['65,535 questions announced', Buffer.concat([header(0xffff), valid.subarray(12)])],
    ['4,000 bytes of zero labels', Buffer.concat([header(1), Buffer.alloc(4000, 1)])],
  ];
}

interface Target {
  port: number;
  malformed(): number;
}

function udpAsk(port: number, msg: Buffer, ms = 300): Promise<Buffer | undefined> {
  return new Promise((res) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => { s.close(); res(undefined); }, ms);
    s.once('message', (m) => { clearTimeout(timer); s.close(); res(m); });
    s.send(msg, port, '127.0.0.1');
  });
}

/** Sends `msg` length-prefixed (or `raw` as is) over TCP; the first answer, or undefined when the server closed first. */
function tcpAsk(port: number, msg: Buffer, raw = false, ms = 2000): Promise<{ answer?: Buffer; closed: boolean }> {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      const answer = buf.length >= 2 ? buf.subarray(2, 2 + buf.readUInt16BE(0)) : undefined;
      s.destroy();
      res({ ...(answer ? { answer } : {}), closed });
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(false);
    });
    s.on('close', () => done(true));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(msg.length);
    s.end(raw ? msg : Buffer.concat([len, msg]));
  });
}

const rcode = (m: Buffer): number => m[3] & 0x0f;
const idOf = (m: Buffer): number => m.readUInt16BE(0);

async function answersValid(t: Test, target: Target, note: string): Promise<void> {
  const udp = await udpAsk(target.port, query(NAME, 0x7777), 2000);
  t.ok(udp, `UDP: a valid query is answered (${note})`);
  if (udp) t.same(Packet.parse(udp).answers.map((a) => a.address), [VIP], `UDP: with the VIP (${note})`);
  const tcp = await tcpAsk(target.port, query(NAME, 0x7778));
  t.ok(tcp.answer, `TCP: a valid query is answered (${note})`);
  if (tcp.answer) t.same(Packet.parse(tcp.answer).answers.map((a) => a.address), [VIP]);
}

async function hostile(t: Test, target: Target, rng: Rng): Promise<void> {
  const seedNote = `FUZZ_SEED=${rng.seed}`;
  for (const [what, msg] of brokenQueries()) {
    const before = target.malformed();
    const reply = await udpAsk(target.port, msg);
    if (reply) {
      t.equal(rcode(reply), 1, `UDP ${what}: FORMERR`);
      t.equal(idOf(reply), idOf(msg), `UDP ${what}: for the query's id`);
    } else {
      t.ok(msg.length < 12 || target.malformed() > before, `UDP ${what}: dropped`);
    }
    const tcp = await tcpAsk(target.port, msg);
    t.ok(tcp.closed || (tcp.answer && rcode(tcp.answer) === 1), `TCP ${what}: closed or FORMERR`);
  }
  t.ok(target.malformed() >= 8, `malformed queries counted (${target.malformed()})`);
  // Oversized: a 60 KB datagram, and a TCP length prefix promising more than ever comes.
  await udpAsk(target.port, Buffer.concat([query(NAME), Buffer.alloc(60_000, 7)]));
  const short = await tcpAsk(target.port, Buffer.from([0xff, 0xff, 1, 2, 3]), true);
  t.ok(short.closed, 'TCP: a message cut short is closed');
  await answersValid(t, target, 'after the broken queries');
  // Random: bytes, and valid queries with random bytes flipped.
  for (let i = 0; i < 150; i++) {
    const msg = rng.int(2) ? rng.bytes(rng.int(600)) : (() => {
      const q = query(NAME, rng.int(65536));
      for (let k = 0; k < 1 + rng.int(4); k++) q[rng.int(q.length)] = rng.int(256);
      return q;
    })();
    await udpAsk(target.port, msg, 20);
    if (i % 10 === 0) await tcpAsk(target.port, msg, rng.int(4) === 0, 300);
  }
  await answersValid(t, target, `after 150 random queries, ${seedNote}`);
}

t.test('cluster DNS', async (t) => {
  const rng = seededRng();
  t.comment(`FUZZ_SEED=${rng.seed}`);
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const dns = await startDnsServer({ port: 0, host: '127.0.0.1', config: buildDnsRecords([{ name: 'httpbin', namespace: 'default', vip: VIP }]), log });
  t.teardown(() => dns.close());
  await answersValid(t, { port: dns.port, malformed: () => dns.stats.malformed }, 'before');
  await hostile(t, { port: dns.port, malformed: () => dns.stats.malformed }, rng);
  t.ok(dns.stats.formErr > 0, 'some answered FORMERR');
  t.equal(lines.filter((l) => l.msg === 'malformed query').length, dns.stats.malformed, 'each malformed query logged once');
});

t.test('ztunnel DNS proxy', async (t) => {
  const rng = seededRng();
  t.comment(`FUZZ_SEED=${rng.seed}`);
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const metrics = new Metrics();
  const z = { log, metrics, xds: { store: { state: { services: [{ hostname: NAME, vips: [VIP] }] } } } } as unknown as ZtunnelInputs;
  // No upstream: nothing the proxy does not know leaves the test.
  const dns = await startDns(z, '127.0.0.1', 0, undefined);
  t.teardown(() => dns.close());
  const malformed = (): number => metrics.refusals.value('dns', 'malformed');
  await answersValid(t, { port: dns.port, malformed }, 'before');
  await hostile(t, { port: dns.port, malformed }, rng);
  t.equal(lines.filter((l) => l.msg === 'malformed DNS query').length, malformed(), 'each malformed query logged once');
  t.match(metrics.render(), /lab_refused_total\{listener="dns",reason="malformed"\} [1-9]/, 'exported on /metrics');
});
