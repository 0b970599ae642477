// The echo app on loopback: what comes back is exactly what was sent; the sink counts.
import t from 'tap';
import { captureLogger } from './capture-logger.js';
import { waitFor } from '../e2e/helpers.js';
import { connect } from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { startEcho } from '../../src/apps/echo-server.js';

/** Sends `payload` in pieces, half-closes, and collects everything until the server closes. */
function exchange(port: number, payload: Buffer, piece = 64 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      let off = 0;
      const write = (): void => {
        while (off < payload.length) {
          const ok = sock.write(payload.subarray(off, off + piece));
          off += piece;
          if (!ok) return void sock.once('drain', write);
        }
        sock.end();
      };
      write();
    });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => resolve(Buffer.concat(chunks)));
    sock.on('error', reject);
  });
}


const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('echo returns what was sent', async (t) => {
  const { log, lines } = captureLogger();
  const app = await startEcho({ port: 0, host: '127.0.0.1', log });
  t.teardown(() => app.close());

  const hello = await exchange(app.port, Buffer.from('hello mesh\n'));
  t.equal(hello.toString(), 'hello mesh\n');

  // Larger than every socket buffer on the way, so backpressure is exercised.
  const big = randomBytes(8 * 1024 * 1024 + 13);
  const back = await exchange(app.port, big);
  t.equal(back.length, big.length, 'same length');
  t.equal(sha(back), sha(big), 'same bytes');

  // The server logs a connection once both directions have closed, a moment after our end.
  const l = await waitFor(() => lines.find((x) => x.bytesIn === big.length), 5000, 'the connection log line');
  t.match(l, { msg: 'connection', mode: 'echo', remote: '127.0.0.1', bytesIn: big.length, bytesOut: big.length }, 'logs bytes per connection');
});

t.test('sink counts and answers on half-close', async (t) => {
  const app = await startEcho({ port: 0, host: '127.0.0.1', sink: true });
  t.teardown(() => app.close());
  t.equal((await exchange(app.port, Buffer.alloc(0))).toString(), '0\n');
  const n = 32 * 1024 * 1024 + 5;
  const started = process.hrtime.bigint();
  const reply = await exchange(app.port, Buffer.alloc(n, 7), 1024 * 1024);
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  t.equal(reply.toString(), `${n}\n`);
  t.comment(`sink: ${n} bytes in ${(s * 1000).toFixed(0)} ms, ${((n * 8) / s / 1e9).toFixed(2)} Gbit/s`);
});

t.test('close() ends open connections promptly', async (t) => {
  const app = await startEcho({ port: 0, host: '127.0.0.1' });
  const sock = connect({ host: '127.0.0.1', port: app.port });
  await new Promise((r) => sock.once('connect', r));
  const closed = new Promise((r) => sock.once('close', r));
  sock.on('error', () => {});
  const started = Date.now();
  await app.close();
  await closed;
  t.ok(Date.now() - started < 500, `closed in ${Date.now() - started} ms with an idle connection open`);
});
