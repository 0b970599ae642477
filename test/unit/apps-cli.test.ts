// The pod entries as the lab runs them: flags, ready file, JSON log on stdout, SIGTERM -> exit 0,
// SIGHUP -> DNS reload. The programs run as child processes from their TypeScript source.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createConnection } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCommonArgs, UsageError, writeReadyFile, plainAddress } from '../../src/apps/app-cli.js';
import { buildDnsRecords } from '../../src/apps/dns-records.js';
import { waitFor } from '../e2e/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'alt-apps-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Only the TypeScript loader: the child must not report to this test's tap process.
const loader = process.execArgv.filter((a) => a.includes('typescript'));
const src = (name: string): string => resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../src/apps', `${name}.ts`);

interface Child {
  proc: ChildProcess;
  stdout: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(app: string, args: string[]): Child {
  const proc = spawn(process.execPath, [...loader, src(app), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (out += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return { proc, stdout: () => out, exit };
}

/** Polls for the ready file like the lab does; the moment it exists the port must accept. */
async function waitReady(file: string, child: Child, timeoutMs = 20000): Promise<{ port: number; connectedAtOnce: boolean }> {
  await waitFor(() => {
    if (child.proc.exitCode !== null) throw new Error(`exited ${child.proc.exitCode}: ${child.stdout()}`);
    return existsSync(file);
  }, timeoutMs, `the ready file ${file}`, 10);
  const info = JSON.parse(readFileSync(file, 'utf8'));
  const connectedAtOnce = await new Promise<boolean>((r) => {
    const s = createConnection({ host: '127.0.0.1', port: info.port }, () => {
      s.destroy();
      r(true);
    });
    s.on('error', () => r(false));
  });
  return { port: info.port, connectedAtOnce };
}

const logLines = (out: string): Array<Record<string, unknown>> =>
  out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

t.test('parseCommonArgs', async (t) => {
  t.same(parseCommonArgs([], { port: 80, name: 'httpbin' }).common, { port: 80, host: '0.0.0.0', readyFile: undefined, name: 'httpbin' });
  const { common, values } = parseCommonArgs(
    ['--port', '8080', '--host', '127.0.0.1', '--ready-file', '/x/r', '--name', 'pod-1', '--sink'],
    { port: 80, name: 'httpbin' },
    { sink: { type: 'boolean' } },
  );
  t.same(common, { port: 8080, host: '127.0.0.1', readyFile: '/x/r', name: 'pod-1' });
  t.equal(values.sink, true);
  t.throws(() => parseCommonArgs(['--port', '70000'], { port: 80, name: 'x' }), UsageError);
  t.throws(() => parseCommonArgs(['--port', 'http'], { port: 80, name: 'x' }), /--port must be an integer/);
  t.throws(() => parseCommonArgs(['--bogus'], { port: 80, name: 'x' }), UsageError);
  t.equal(plainAddress('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(plainAddress('fd00::1'), 'fd00::1');
});

t.test('writeReadyFile is atomic', async (t) => {
  const f = join(dir, 'sub', 'ready-x');
  writeReadyFile(f, { port: 1234 });
  t.match(JSON.parse(readFileSync(f, 'utf8')), { pid: process.pid, port: 1234 });
  t.same(readdirSync(join(dir, 'sub')), ['ready-x'], 'no temp file left behind');
});

t.test('httpbin entry: ready after listening, logs, SIGTERM exits 0 with a keep-alive peer', async (t) => {
  const ready = join(dir, 'ready', 'default.httpbin');
  const c = run('httpbin', ['--port', '0', '--host', '127.0.0.1', '--name', 'httpbin-5f6d', '--ready-file', ready]);
  const { port, connectedAtOnce } = await waitReady(ready, c);
  t.ok(connectedAtOnce, 'port accepts connections as soon as the ready file exists');

  // An idle keep-alive connection must not hold the exit back.
  const sock = connect({ host: '127.0.0.1', port });
  const reply = await new Promise<string>((r) => {
    let b = '';
    sock.on('data', (d) => {
      b += d;
      if (b.endsWith('httpbin-5f6d\n')) r(b);
    });
    sock.write('GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  t.match(reply, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: keep-alive[\s\S]*\r\n\r\nhttpbin-5f6d\n$/);
  sock.on('error', () => {});

  const started = Date.now();
  c.proc.kill('SIGTERM');
  const { code } = await c.exit;
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - started < 1000, `exited in ${Date.now() - started} ms`);
  const lines = logLines(c.stdout());
  t.match(lines[0], { msg: 'listening', port, pod: 'httpbin-5f6d', name: 'httpbin' });
  t.ok(lines.some((l) => l.msg === 'request' && l.path === '/hostname' && l.status === 200 && l.remote === '127.0.0.1'), 'request logged');
  t.ok(lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'), 'shutdown logged');
});

t.test('echo entry in sink mode', async (t) => {
  const ready = join(dir, 'ready', 'default.sink');
  const c = run('echo', ['--port', '0', '--host', '127.0.0.1', '--sink', '--ready-file', ready]);
  const { port } = await waitReady(ready, c);
  const reply = await new Promise<string>((r) => {
    let b = '';
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => s.end(Buffer.alloc(100_000)));
    s.on('data', (d) => (b += d));
    s.on('end', () => r(b));
  });
  t.equal(reply, '100000\n');
  c.proc.kill('SIGINT');
  t.equal((await c.exit).code, 0);
  t.ok(logLines(c.stdout()).some((l) => l.msg === 'connection' && l.mode === 'sink' && l.bytesIn === 100_000));
});

t.test('dns-server entry: SIGHUP reloads the config', async (t) => {
  const cfg = join(dir, 'dns.json');
  writeFileSync(cfg, JSON.stringify(buildDnsRecords([{ name: 'httpbin', namespace: 'default', vip: '10.96.0.11' }])));
  const ready = join(dir, 'ready', 'kube-system.coredns');
  const c = run('dns-server', ['--config', cfg, '--port', '0', '--host', '127.0.0.1', '--ready-file', ready]);
  const { port } = await waitReady(ready, c);
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  t.same(await resolver.resolve4('httpbin.default.svc.cluster.local'), ['10.96.0.11']);

  writeFileSync(cfg, JSON.stringify(buildDnsRecords([{ name: 'echo', namespace: 'default', vip: '10.96.0.12' }])));
  c.proc.kill('SIGHUP');
  await waitFor(() => c.stdout().includes('config reloaded'), 3000, 'the reload to be logged');
  t.same(await resolver.resolve4('echo.default.svc.cluster.local'), ['10.96.0.12'], 'new record served after SIGHUP');
  c.proc.kill('SIGTERM');
  t.equal((await c.exit).code, 0);
});

t.test('bad command lines exit 2 with a message', async (t) => {
  const noConfig = run('dns-server', ['--port', '0']);
  t.equal((await noConfig.exit).code, 2);
  t.match(noConfig.stdout(), /--config FILE is required/);
  const badFlag = run('httpbin', ['--prot', '80']);
  t.equal((await badFlag.exit).code, 2);
  t.match(badFlag.stdout(), /Unknown option '--prot'/);
});
