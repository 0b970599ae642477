// Releasing idle HBONE sessions after a burst (src/mesh/idle-reaper.ts): the oldest session of
// a key keeps the pool's idle timeout, the surplus ones a burst opened are released sooner.
// The pool runs against a real HBONE server on loopback; what is checked is the number of
// sessions the pool holds and the TLS connections the server still has open.
import t from 'tap';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabCa } from '../../src/mesh/ca.js';
import { meshTlsFromCa } from '../../src/mesh/tls.js';
import { createHboneServer } from '../../src/mesh/hbone-server.js';
import { HbonePool, POOL_MAX_STREAMS } from '../../src/mesh/pool.js';
import { idleDelay, SURPLUS_IDLE_MS } from '../../src/mesh/idle-reaper.js';

const spiffe = (sa: string) => ({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: sa });
const POD = '10.244.1.9';

t.test('idleDelay: only a session behind a live one of its key is surplus', async (t) => {
  const a = { dead: false };
  const b = { dead: false };
  const c = { dead: false };
  t.equal(idleDelay(a, [a, b, c], 60_000), 60_000, 'the oldest keeps the idle timeout');
  t.equal(idleDelay(c, [a, b, c], 60_000), SURPLUS_IDLE_MS, 'one behind it is surplus');
  t.equal(idleDelay(b, [{ dead: true }, b], 60_000), 60_000, 'behind only a dead one: the oldest live one');
  t.equal(idleDelay(b, [a, b], 1_000), 1_000, 'never longer than the idle timeout');
  t.equal(idleDelay(b, [a, b], 60_000, 200), 200, 'the surplus delay is a parameter');
});

t.test('after a burst of 2.5 sessions of streams, the pool keeps one warm session', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-reaper-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mesh = meshTlsFromCa(await createLabCa(join(dir, 'ca'), { lab: 'reaper' }));
  // Each CONNECT is accepted and ends when the client ends it: a tunnel that carries nothing.
  const server = createHboneServer({
    tls: mesh,
    identityFor: (ip) => (ip === POD ? spiffe('httpbin') : undefined),
    onRequest(req) {
      const s = req.accept();
      s.resume();
      s.on('end', () => s.end());
    },
  });
  let tlsOpen = 0;
  const front = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    tlsOpen++;
    s.once('close', () => tlsOpen--);
    server.handle(s, { ip: POD, port: 15008 });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  const port = (front.address() as net.AddressInfo).port;
  const pool = new HbonePool({ tls: mesh, idleTimeoutMs: 3_000, surplusIdleTimeoutMs: 150, dial: () => net.connect({ host: '127.0.0.1', port }) });
  t.teardown(() => {
    pool.close();
    server.close();
    front.close();
  });
  const key = { source: spiffe('sleep'), expected: spiffe('httpbin'), address: { ip: POD, port: 15008 } };

  const n = POOL_MAX_STREAMS * 2 + POOL_MAX_STREAMS / 2;
  const streams = await Promise.all(Array.from({ length: n }, () => pool.connect(key, `${POD}:80`).then((c) => c.stream)));
  t.equal(pool.size, 3, `${n} concurrent streams opened 3 sessions`);
  await Promise.all(streams.map((s) => new Promise((r) => {
    s.once('close', r);
    s.resume();
    s.end();
  })));
  const t0 = performance.now();
  while (pool.size > 1 && performance.now() - t0 < 2_000) await new Promise((r) => setTimeout(r, 10));
  const took = performance.now() - t0;
  t.equal(pool.size, 1, `the 2 surplus sessions were released after ${Math.round(took)} ms (surplus timeout 150 ms, idle timeout 3 s)`);
  while (tlsOpen > 1 && performance.now() - t0 < 2_000) await new Promise((r) => setTimeout(r, 10));
  t.equal(tlsOpen, 1, 'and the server holds one connection');

  const again = await pool.connect(key, `${POD}:80`);
  t.ok(again.reused, 'the next stream reuses the warm session');
  again.stream.resume();
  again.stream.end();
});
