// An uncaught error ends the proxy with a fatal log line saying why and a non-zero exit
// (the supervisor restarts it), instead of being swallowed.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'proxy', 'crash.ts');

function runChild(body: string): { code: number | null; lines: Array<Record<string, any>> } {
  const script = `
    import { pino, destination } from 'pino';
    import { crashOnUncaught } from ${JSON.stringify(pathToFileURL(src).href)};
    const log = pino({ name: 'proxy' }, destination({ dest: 1, sync: true }));
    crashOnUncaught(log);
    ${body}
  `;
  // The child inherits tap's TypeScript loader, so it can import the source directly.
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: dirname(src) });
  return { code: r.status, lines: r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) };
}

t.test('uncaught exception: fatal log line with the error, exit 70', async (t) => {
  const r = runChild(`setTimeout(() => { throw new Error('boom in a connection handler'); }, 1); setTimeout(() => log.info('still serving'), 200);`);
  t.equal(r.code, 70);
  t.match(r.lines, [{ level: 60, msg: 'uncaught exception; exiting', err: { message: 'boom in a connection handler' } }]);
  t.notOk(r.lines.some((l) => l.msg === 'still serving'), 'it did not keep serving');
});

t.test('unhandled rejection: same', async (t) => {
  const r = runChild(`Promise.reject(new Error('lost promise'));`);
  t.equal(r.code, 70);
  t.match(r.lines, [{ level: 60, msg: 'unhandled rejection; exiting', err: { message: 'lost promise' } }]);
});
