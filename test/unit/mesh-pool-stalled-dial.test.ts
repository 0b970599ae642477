// A dial whose TCP handshake stalls (a SYN dropped by a peer ztunnel that was restarting: TPROXY
// finds no listener, the kernel resends after 1 s) is not shared with CONNECTs that come later
// than STALLED_DIAL_MS: they dial afresh and are served as soon as the peer listens again.
// Real HBONE server on loopback; the stalled dial is a socket that never connects.
import t from 'tap';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLabCa } from '../../src/mesh/ca.js';
import { meshTlsFromCa } from '../../src/mesh/tls.js';
import { createHboneServer } from '../../src/mesh/hbone-server.js';
import { HbonePool, STALLED_DIAL_MS } from '../../src/mesh/pool.js';

const spiffe = (sa: string) => ({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: sa });
const POD = '10.244.1.9';

t.test('a CONNECT after a dial stalled for longer than STALLED_DIAL_MS opens its own session', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-stalled-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mesh = meshTlsFromCa(await createLabCa(join(dir, 'ca'), { lab: 'stalled' }));
  const server = createHboneServer({
    tls: mesh,
    identityFor: (ip) => (ip === POD ? spiffe('httpbin') : undefined),
    onRequest(req) { const s = req.accept(); s.end('hello'); s.resume(); },
  });
  const front = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => server.handle(s, { ip: POD, port: 15008 }));
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  const port = (front.address() as net.AddressInfo).port;
  const stalled: net.Socket[] = [];
  let dials = 0;
  // The first dial never completes its handshake (a socket that is never connected).
  const dial = (): net.Socket => {
    dials++;
    if (dials === 1) { const s = new net.Socket(); stalled.push(s); return s; }
    return net.connect({ host: '127.0.0.1', port });
  };
  const pool = new HbonePool({ tls: mesh, dial });
  t.teardown(() => { pool.close(); server.close(); front.close(); for (const s of stalled) s.destroy(); });
  const key = { source: spiffe('sleep'), expected: spiffe('httpbin'), address: { ip: POD, port: 15008 } };

  let firstDone = false;
  const first = pool.connect(key, `${POD}:8000`).then((r) => { firstDone = true; return r; }, () => { firstDone = true; });
  await sleep(STALLED_DIAL_MS / 4);
  const early = pool.connect(key, `${POD}:8000`).then(() => 'served', () => 'failed');
  await sleep(STALLED_DIAL_MS * 1.5);
  t.equal(dials, 1, 'a CONNECT within STALLED_DIAL_MS waits for the same dial');
  const t0 = performance.now();
  const { stream } = await pool.connect(key, `${POD}:8000`);
  const body = await new Promise<string>((resolve) => { let b = ''; stream.on('data', (d) => { b += d; }); stream.on('end', () => resolve(b)); });
  t.equal(body, 'hello', 'the later CONNECT is served');
  t.ok(performance.now() - t0 < 1000, `without waiting for the stalled dial (${Math.round(performance.now() - t0)} ms)`);
  t.equal(dials, 2, 'by a dial of its own');
  t.notOk(firstDone, 'the CONNECT on the stalled dial still waits for it (the kernel resends its SYN)');
  stalled[0].destroy(new Error('gave up'));
  await first;
  t.equal(await early, 'failed', 'and fails with it when the dial fails');
});
