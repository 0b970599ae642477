// httpbin on loopback: what a client of the pod sees (status, body, byte counts, timing).
import t from 'tap';
import { captureLogger } from './capture-logger.js';
import { waitFor } from '../e2e/helpers.js';
import { request, Agent, type IncomingMessage } from 'node:http';
import { startHttpbin } from '../../src/apps/httpbin-server.js';


interface Got {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  ms: number;
  localPort?: number;
}

function get(port: number, path: string, opts: { headers?: Record<string, string>; agent?: Agent; method?: string } = {}): Promise<Got> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - started, localPort: res.socket?.localPort }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const json = (g: Got): any => JSON.parse(g.body.toString());

t.test('httpbin endpoints', async (t) => {
  const { log, lines } = captureLogger();
  const app = await startHttpbin({ port: 0, host: '127.0.0.1', name: 'httpbin-7d9c', log });
  t.teardown(() => app.close());
  t.ok(app.port > 0, 'listens on an ephemeral port');

  t.test('/ip is the TCP peer, not a header', async (t) => {
    const g = await get(app.port, '/ip', { headers: { 'X-Forwarded-For': '10.9.9.9' } });
    t.equal(g.status, 200);
    t.match(g.headers['content-type'], /application\/json/);
    t.same(json(g), { origin: '127.0.0.1' });
  });

  t.test('/status/<code>', async (t) => {
    const g = await get(app.port, '/status/418');
    t.equal(g.status, 418);
    t.equal(g.body.length, 0, 'empty body');
    t.equal((await get(app.port, '/status/503')).status, 503);
    t.equal((await get(app.port, '/status/204')).status, 204);
    for (const bad of ['99', '100', '600', 'abc', '2000']) {
      t.equal((await get(app.port, `/status/${bad}`)).status, 400, `/status/${bad} -> 400`);
    }
  });

  t.test('/headers in httpbin case', async (t) => {
    const g = await get(app.port, '/headers', { headers: { 'user-agent': 'curl/7.88.1', 'x-lab-test': 'yes' } });
    const h = json(g).headers;
    t.equal(h['User-Agent'], 'curl/7.88.1');
    t.equal(h['X-Lab-Test'], 'yes');
    t.equal(h.Host, `127.0.0.1:${app.port}`);
  });

  t.test('/get', async (t) => {
    const b = json(await get(app.port, '/get?a=1&a=2&b=x'));
    t.same(b.args, { a: ['1', '2'], b: 'x' });
    t.equal(b.origin, '127.0.0.1');
    t.equal(b.url, `http://127.0.0.1:${app.port}/get?a=1&a=2&b=x`);
    t.type(b.headers, 'object');
  });

  t.test('/delay waits', async (t) => {
    const g = await get(app.port, '/delay/0.2');
    t.equal(g.status, 200);
    t.ok(g.ms >= 200, `took ${g.ms} ms >= 200`);
    t.equal(json(g).origin, '127.0.0.1', 'then answers like /get');
    t.equal((await get(app.port, '/delay/-1')).status, 400);
    t.equal((await get(app.port, '/delay/x')).status, 400);
  });

  t.test('/hostname, /, 404', async (t) => {
    t.equal((await get(app.port, '/hostname')).body.toString(), 'httpbin-7d9c\n');
    const idx = await get(app.port, '/');
    t.equal(idx.status, 200);
    t.match(json(idx).endpoints, ['/ip']);
    const nf = await get(app.port, '/nope');
    t.equal(nf.status, 404);
    t.same(json(nf), { error: 'not found', path: '/nope' });
  });

  t.test('/bytes/<n> delivers exactly n bytes', async (t) => {
    const small = await get(app.port, '/bytes/1000');
    t.equal(small.body.length, 1000);
    t.equal(small.headers['content-length'], '1000');
    t.equal(small.headers['content-type'], 'application/octet-stream');
    t.equal((await get(app.port, '/bytes/0')).body.length, 0);
    t.equal((await get(app.port, '/bytes/12x')).status, 400);

    const n = 64 * 1024 * 1024 + 7; // not a multiple of the server's chunk
    const started = process.hrtime.bigint();
    const count = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: app.port, path: `/bytes/${n}` }, (res) => {
        let c = 0;
        res.on('data', (d: Buffer) => (c += d.length));
        res.on('end', () => resolve(c));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    const s = Number(process.hrtime.bigint() - started) / 1e9;
    t.equal(count, n, 'byte count matches');
    const gbit = (n * 8) / s / 1e9;
    t.comment(`/bytes/${n}: ${(s * 1000).toFixed(0)} ms, ${gbit.toFixed(2)} Gbit/s on loopback`);
    t.ok(gbit > 1, `throughput ${gbit.toFixed(2)} Gbit/s > 1`);
  });

  t.test('/bytes stops when the client goes away', async (t) => {
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: app.port, path: `/bytes/${10 * 1024 ** 3}` }, (res) => {
        t.equal(res.headers['content-length'], String(10 * 1024 ** 3), '10 GiB advertised');
        let c = 0;
        res.on('data', (d: Buffer) => {
          c += d.length;
          if (c > 4 * 1024 * 1024) req.destroy();
        });
        res.on('error', () => {});
        res.on('close', () => resolve());
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.end();
      setTimeout(() => reject(new Error('no close')), 5000).unref();
    });
    // The server logs the request once the response closes; it must say aborted.
    const line = await waitFor(() => lines.find((l) => l.path === `/bytes/${10 * 1024 ** 3}` && l.aborted === true), 2000, 'the aborted transfer to be logged');
    t.ok(Number(line.bytes) < 1024 ** 3, `server stopped after ${line.bytes} bytes`);
  });

  t.test('request log lines', async (t) => {
    await get(app.port, '/status/418');
    const l = lines.filter((x) => x.path === '/status/418').at(-1)!;
    t.match(l, { method: 'GET', path: '/status/418', remote: '127.0.0.1', status: 418, bytes: 0, msg: 'request' });
    t.type(l.durationMs, 'number');
  });
});

t.test('keep-alive is kept, and close() does not wait for idle peers', async (t) => {
  const app = await startHttpbin({ port: 0, host: '127.0.0.1' });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const a = await get(app.port, '/ip', { agent });
  const b = await get(app.port, '/ip', { agent });
  t.equal(a.headers.connection, 'keep-alive');
  t.equal(a.localPort, b.localPort, 'second request reused the connection');
  const started = Date.now();
  await app.close();
  t.ok(Date.now() - started < 500, `closed in ${Date.now() - started} ms with an idle keep-alive connection`);
});
