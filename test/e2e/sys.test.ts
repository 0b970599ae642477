// src/host/sys.ts against the real kernel: spoofed-source connects, TPROXY listeners,
// withNetns, SO_ORIGINAL_DST and SO_MARK, in two throwaway namespaces joined by a veth.
// Needs root and a built dist/ (npx tsc -p tsconfig.json): the fixtures run in child
// processes under `ip netns exec` and import dist/host/sys.js.
import t from 'tap';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import {
  withNetns,
  transparentListenFd,
  originalDst,
  socketFd,
  getSockMark,
  setSockMark,
  spoofedSocketFd,
  closeFd,
  SysError,
} from '../../src/host/sys.js';
import { waitFor } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = (f: string) => join(root, 'test', 'fixtures', f);
const A = 'alt-sys-a';
const B = 'alt-sys-b';

if (!existsSync(join(root, 'dist', 'host', 'sys.js'))) {
  t.fail('dist/host/sys.js missing: run `npx tsc -p tsconfig.json` first');
  process.exit(1);
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

function cleanup() {
  for (const ns of [A, B]) if (existsSync(`/run/netns/${ns}`)) sh('ip', ['netns', 'del', ns]);
}

const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  cleanup();
});

// Leftovers can only be ours (the alt-sys- prefix belongs to this test).
cleanup();
sh('ip', ['netns', 'add', A]);
sh('ip', ['netns', 'add', B]);
sh('ip', ['link', 'add', 'alt-sys-va', 'netns', A, 'type', 'veth', 'peer', 'name', 'alt-sys-vb', 'netns', B]);
execFileSync('ip', ['-n', A, '-batch', '-'], {
  input: [
    'addr add 10.99.0.1/24 dev alt-sys-va',
    'link set alt-sys-va up',
    'link set lo up',
    // Replies to a spoofed (non-local) source, and TPROXYed packets, are delivered locally.
    'rule add fwmark 1 lookup 100',
    'rule add fwmark 0x400/0xfff lookup 100',
    'route add local 0.0.0.0/0 dev lo table 100',
  ].join('\n'),
});
execFileSync('ip', ['-n', B, '-batch', '-'], {
  input: [
    'addr add 10.99.0.2/24 dev alt-sys-vb',
    'link set alt-sys-vb up',
    'link set lo up',
    'route add 10.99.0.77/32 via 10.99.0.1',
    'route add 10.99.5.0/24 via 10.99.0.1',
  ].join('\n'),
});
execFileSync('ip', ['netns', 'exec', A, 'iptables-restore'], {
  input: [
    '*mangle',
    '-A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark 1',
    '-A PREROUTING -i alt-sys-va -p tcp -d 10.99.5.5 --dport 8080 -j TPROXY --on-port 15001 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff',
    'COMMIT',
    '*nat',
    '-A PREROUTING -i alt-sys-va -p tcp --dport 7070 -j REDIRECT --to-ports 15002',
    'COMMIT',
    '',
  ].join('\n'),
});

/** Starts a fixture in a netns and resolves once it prints "ready". */
function startServer(ns: string, args: string[]): Promise<{ lines: string[]; child: ChildProcess }> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'ready') resolve({ lines, child });
        else lines.push(line);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
}

// Async: some servers live in this very process and must keep accepting meanwhile.
async function client(ns: string, ...args: string[]) {
  const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', ns, process.execPath, fixture('sys-conn-client.mjs'), ...args]);
  return JSON.parse(stdout);
}

async function firstLine(srv: { lines: string[] }): Promise<string> {
  return waitFor(() => srv.lines[0], 2000, 'the server to log the connection');
}

t.test('connectSpoofed: the server sees the spoofed source address', async (t) => {
  const srv = await startServer(B, [fixture('sys-conn-server.mjs'), 'plain', '10.99.0.2', '9000']);
  const r = await client(A, '10.99.0.2', '9000', '10.99.0.77');
  t.equal(r.reply.remoteAddress, '10.99.0.77', 'server saw the spoofed source');
  t.equal(r.local.localAddress, '10.99.0.77', 'client socket is bound to the spoofed address');
  t.equal(r.reply.remotePort, r.local.localPort, 'same connection on both ends');
  t.equal(JSON.parse(await firstLine(srv)).remoteAddress, '10.99.0.77', 'server log agrees');
  srv.child.kill();
});

t.test('transparentListenFd: TPROXY delivers, localAddress is the original destination', async (t) => {
  const srv = await startServer(A, [fixture('sys-conn-server.mjs'), 'transparent', '127.0.0.1', '15001']);
  const r = await client(B, '10.99.5.5', '8080');
  t.equal(r.reply.localAddress, '10.99.5.5', 'original destination address');
  t.equal(r.reply.localPort, 8080, 'original destination port');
  t.equal(r.reply.remoteAddress, '10.99.0.2', 'client address untouched');
  srv.child.kill();
});

t.test('withNetns: a listener made inside lives in that netns, and the thread comes back', async (t) => {
  const before = readlinkSync('/proc/thread-self/ns/net');
  const fd = withNetns(A, () => transparentListenFd({ host: '10.99.0.1', port: 9100 }));
  t.equal(readlinkSync('/proc/thread-self/ns/net'), before, 'back in the original netns');
  t.throws(() => withNetns(A, () => { throw new Error('boom'); }), /boom/);
  t.equal(readlinkSync('/proc/thread-self/ns/net'), before, 'back after a throw too');
  t.throws(() => withNetns('alt-sys-none', () => 1), { code: 'ENOENT' });

  const server = net.createServer((s) => s.end(JSON.stringify({ remoteAddress: s.remoteAddress }) + '\n'));
  await new Promise<void>((res) => server.listen({ fd }, res));
  const r = await client(B, '10.99.0.1', '9100');
  t.equal(r.reply.remoteAddress, '10.99.0.2', 'reached from the peer netns');
  await new Promise((res) => server.close(res));
});

t.test('originalDst: recovers the pre-REDIRECT destination', async (t) => {
  const fd = withNetns(A, () => transparentListenFd({ host: '0.0.0.0', port: 15002 }));
  const seen: Array<{ ip: string; port: number }> = [];
  const server = net.createServer((s) => {
    const od = originalDst(socketFd(s));
    seen.push(od);
    s.end(JSON.stringify(od) + '\n');
  });
  await new Promise<void>((res) => server.listen({ fd }, res));
  const r = await client(B, '10.99.0.1', '7070');
  t.same(r.reply, { ip: '10.99.0.1', port: 7070 });
  t.same(seen, [{ ip: '10.99.0.1', port: 7070 }]);
  await new Promise((res) => server.close(res));
});

t.test('SO_MARK round trip and errno-aware errors', async (t) => {
  const fd = spoofedSocketFd({ srcIp: '10.99.0.77', mark: 0x210 });
  t.equal(getSockMark(fd), 0x210);
  setSockMark(fd, 0x4d3);
  t.equal(getSockMark(fd), 0x4d3);
  closeFd(fd);
  const fd2 = withNetns(A, () => transparentListenFd({ host: '127.0.0.1', port: 9200 }));
  let err: unknown;
  try {
    withNetns(A, () => transparentListenFd({ host: '127.0.0.1', port: 9200 }));
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof SysError, 'a SysError');
  t.match(err, { code: 'EADDRINUSE', errno: 98, syscall: 'bind', message: /^bind 127\.0\.0\.1:9200: EADDRINUSE \(Address already in use\)$/ });
  closeFd(fd2);
});
