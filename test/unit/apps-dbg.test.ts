import t from 'tap';
import { request } from 'node:http';
import { startHttpbin } from '../../src/apps/httpbin-server.js';
t.test('x', async (t) => {
  const app = await startHttpbin({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  await new Promise<void>((resolve) => request({ host: '127.0.0.1', port: app.port, path: '/bytes/67108871' }, (res) => { res.resume(); res.on('end', resolve); }).end());
  t.comment('first done');
  await new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port: app.port, path: `/bytes/${10 * 1024 ** 3}` }, (res) => {
      t.comment('resp');
      let c = 0;
      res.on('data', (d: Buffer) => { c += d.length; if (c > 4 * 1024 * 1024) { t.comment('destroy ' + c); req.destroy(); } });
      res.on('error', (e) => t.comment('res err ' + e.message));
      res.on('close', () => { t.comment('res close'); resolve(); });
    });
    req.on('error', (e) => t.comment('req err ' + e.message));
    req.on('close', () => t.comment('req close'));
    req.on('socket', (s) => { t.comment('socket reused=' + (req as any).reusedSocket + ' ' + s.localPort); s.on('close', () => t.comment('sock close')); });
    req.end();
    setTimeout(() => { t.comment('timeout'); resolve(); }, 3000).unref();
  });
});
