// A draining HBONE server (graceful restart: GOAWAY on every session) carries the streams it
// already has to their end. Issue 13: the server's PING keepalive took the PING Node cancels
// on a GOAWAY'd session for a dead peer and destroyed the session, cutting a long transfer
// short. Here the keepalive runs every 50 ms, so a draining session sees many PING rounds
// while a transfer larger than the HTTP/2 windows is read slowly through it.
import t, { type Test } from 'tap';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabCa } from '../../src/mesh/ca.js';
import { meshTlsFromCa } from '../../src/mesh/tls.js';
import { createHboneServer, type HboneRefusal, type HboneServer } from '../../src/mesh/hbone-server.js';
import { HbonePool } from '../../src/mesh/pool.js';
import { copyBidirectional } from '../../src/mesh/copy.js';
import type { SpiffeId } from '../../src/mesh/identity.js';

const id = (sa: string): SpiffeId => ({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: sa });
const DST_IP = '10.244.1.5';
// Above the 16 MiB stream window: the server still holds bytes long after it drained.
const SIZE = 24 * 1024 * 1024;
const PING_MS = 50;
const BODY = randomBytes(SIZE);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const listen = (srv: net.Server): Promise<number> =>
  new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));

async function rig(t: Test): Promise<{ server: HboneServer; pool: HbonePool; refusals: HboneRefusal[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'alt-drain-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mesh = meshTlsFromCa(await createLabCa(join(dir, 'ca'), { lab: 'test' }));
  // The upstream: sends BODY and closes, as a server answering one request would.
  const upstream = net.createServer((s) => { s.on('error', () => undefined); s.end(BODY); });
  const upPort = await listen(upstream);
  const refusals: HboneRefusal[] = [];
  const server = createHboneServer({
    tls: mesh,
    limits: { pingIntervalMs: PING_MS, pingTimeoutMs: 1000 },
    onRefused: (x) => refusals.push(x),
    identityFor: (ip) => (ip === DST_IP ? id('httpbin') : undefined),
    onRequest(req) {
      const up = net.connect({ host: '127.0.0.1', port: upPort });
      up.once('error', () => req.reject(503, 'connect failed'));
      up.once('connect', () => void copyBidirectional(req.accept(), up));
    },
  });
  const front = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => server.handle(s, { ip: DST_IP, port: 15008 }));
  const port = await listen(front);
  const pool = new HbonePool({ tls: mesh, dial: () => net.connect({ host: '127.0.0.1', port }) });
  t.teardown(() => { pool.close(); server.close(); front.close(); upstream.close(); });
  return { server, pool, refusals };
}

t.test('a draining server carries an open stream to its end: its keepalive does not take the cancelled PING of a GOAWAY\'d session for a dead peer', async (t) => {
  const { server, pool, refusals } = await rig(t);
  const { stream } = await pool.connect({ source: id('sleep'), expected: id('httpbin'), address: { ip: DST_IP, port: 15008 } }, `${DST_IP}:80`);
  const parts: Buffer[] = [];
  let got = 0;
  let drainAt = 0;
  let drainedAt = 0;
  const outcome = new Promise<string>((resolve) => {
    stream.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      // The server starts draining (GOAWAY) once the transfer is under way.
      if (!drainAt && got >= 1024 * 1024) {
        drainAt = Date.now();
        server.drain();
        void server.drained().then(() => { drainedAt = Date.now(); });
      }
      // A slow reader: a pause after every chunk (some 16 KiB), so the transfer outlives many
      // PING rounds of the drain.
      stream.pause();
      setTimeout(() => stream.resume(), 1);
      // As an HTTP/1.1 client: its side ends once the whole response is in.
      if (got === SIZE) stream.end();
    });
    stream.once('end', () => resolve('end'));
    stream.once('error', (e: Error) => resolve(`error: ${e.message}`));
    stream.once('close', () => resolve(`closed (rst ${stream.rstCode})`));
  });
  const how = await outcome;
  const body = Buffer.concat(parts);
  t.equal(how, 'end', `the stream ended normally (${how})`);
  t.ok(Date.now() - drainAt >= 5 * PING_MS, `the transfer went on for ${Date.now() - drainAt} ms after the drain began (past 5 PING intervals)`);
  t.equal(body.length, SIZE, `every byte arrived (${body.length}/${SIZE})`);
  t.equal(sha(body), sha(BODY), 'and they are the bytes sent');
  t.same(refusals, [], 'the server reported no refusal (no PING failure) for the draining session');
  const deadline = Date.now() + 3000;
  while (!drainedAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.ok(drainedAt > 0, 'the server reported drained once the stream had ended');
});
