// copyBidirectional between two plain TCP sockets goes through splice(2) (src/mesh/splice.ts);
// on loopback: the bytes both ways and their counts, the first bytes Node had read before the
// hand-over, a half-close that lets the reply through, a reset seen as an error, and the same
// results with AMBIENT_LAB_SPLICE=0 (the pumps).
import t, { type Test } from 'tap';
import net from 'node:net';
import { copyBidirectional, type CopyResult } from '../../src/mesh/copy.js';
import { spliceable } from '../../src/mesh/splice.js';

const listen = (srv: net.Server): Promise<number> =>
  new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));

/** A proxy on loopback: accepts, dials `upstreamPort`, copies; resolves each copy's result. */
async function proxy(t: Test, upstreamPort: number): Promise<{ port: number; results: Promise<CopyResult>[]; spliced: boolean[] }> {
  const results: Promise<CopyResult>[] = [];
  const spliced: boolean[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (down) => {
    down.on('error', () => undefined);
    results.push(new Promise((resolve) => {
      const up = net.connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true });
      up.on('error', () => undefined);
      up.once('connect', () => {
        spliced.push(spliceable(down) && spliceable(up));
        resolve(copyBidirectional(down, up));
      });
    }));
  });
  t.teardown(() => srv.close());
  return { port: await listen(srv), results, spliced };
}

/** Counts what it receives and, when the client half-closes, answers with the count. */
async function counter(t: Test): Promise<number> {
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`received ${n}`));
  });
  t.teardown(() => srv.close());
  return listen(srv);
}

function exchange(port: number, payload: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let reply = '';
    c.on('data', (d: Buffer) => (reply += d.toString()));
    c.on('end', () => resolve(reply));
    c.on('error', reject);
    // The first bytes go out at once: Node reads them before the upstream is connected.
    c.write('hello ');
    c.end(payload);
  });
}

for (const mode of ['splice', 'pumps'] as const) {
  t.test(`${mode}: 32 MiB up, the reply after a half-close, byte counts`, async (t) => {
    if (mode === 'pumps') process.env.AMBIENT_LAB_SPLICE = '0';
    t.teardown(() => void delete process.env.AMBIENT_LAB_SPLICE);
    const p = await proxy(t, await counter(t));
    const payload = Buffer.alloc(32 << 20, 0x61);
    const reply = await exchange(p.port, payload);
    const total = payload.length + 'hello '.length;
    t.equal(reply, `received ${total}`, 'the upstream got every byte and its reply came back after the FIN');
    const r = await p.results[0];
    t.same(p.spliced, [true], 'both sides are plain TCP sockets');
    t.equal(r.aToB, total, 'bytes client -> upstream');
    t.equal(r.bToA, reply.length, 'bytes upstream -> client');
    t.equal(r.error, undefined, 'no error');
  });
}

t.test('splice: an upstream reset ends the copy with an error and closes the client', async (t) => {
  const rst = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => s.resetAndDestroy());
  });
  t.teardown(() => rst.close());
  const p = await proxy(t, await listen(rst));
  const closed = await new Promise<boolean>((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port: p.port });
    c.on('error', () => undefined);
    c.write('x');
    // Keep writing so the reset is seen on the splice path rather than only at the hand-over.
    const timer = setInterval(() => c.write(Buffer.alloc(64 << 10)), 5);
    c.on('close', () => {
      clearInterval(timer);
      resolve(true);
    });
  });
  t.ok(closed, 'the client connection was closed');
  const r = await p.results[0];
  t.match(r.error?.message ?? '', /ECONNRESET|EPIPE/, 'the error names the reset');
});
