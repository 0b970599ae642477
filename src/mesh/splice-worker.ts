// The splice thread (see splice.ts): one epoll loop over every spliced connection's two
// socket fds, moving bytes socket -> pipe -> socket with splice(2) so they never enter
// JavaScript. Runs synchronously (koffi calls, no event loop); commands arrive on a
// MessagePort read with receiveMessageOnPort after the main thread bumps an eventfd.
import koffi from 'koffi';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { SpliceCommand, SpliceDone, SpliceWorkerData } from './splice.js';

const libc = koffi.load('libc.so.6');
const c = {
  splice: libc.func('long splice(int fdIn, void *offIn, int fdOut, void *offOut, unsigned long len, unsigned int flags)'),
  pipe2: libc.func('int pipe2(void *fds, int flags)'),
  fcntl: libc.func('int fcntl(int fd, int cmd, int arg)'),
  close: libc.func('int close(int fd)'),
  shutdown: libc.func('int shutdown(int fd, int how)'),
  epollCreate: libc.func('int epoll_create1(int flags)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  epollCtl: libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
  epollWait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
  read: libc.func('long read(int fd, void *buf, unsigned long n)'),
};

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_SETPIPE_SZ = 1031;
const SPLICE_F_MOVE = 1;
const SPLICE_F_NONBLOCK = 2;
const SHUT_WR = 1;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLRDHUP = 0x2000;
const EPOLLET = 0x80000000;
const EAGAIN = 11;
const EINTR = 4;
const PIPE_BYTES = 1 << 20;
// struct epoll_event is packed (12 bytes) on x86_64 only; elsewhere the u64 is 8-aligned.
const EV_SIZE = process.arch === 'x64' ? 12 : 16;
const EV_DATA = process.arch === 'x64' ? 4 : 8;
const MAX_EVENTS = 64;

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(koffi.os.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
const errName = (e: number): string => errnoNames.get(e) ?? `E${e}`;

interface Dir {
  from: number;
  to: number;
  pipeR: number;
  pipeW: number;
  inPipe: number;
  bytes: number;
  eof: boolean;
  shut: boolean;
}

interface Conn {
  id: number;
  fds: [number, number];
  dirs: [Dir, Dir];
}

const { commands, stop } = workerData as SpliceWorkerData;
const stopFlag = new Int32Array(stop);
const port = parentPort as MessagePort;
const conns = new Map<number, Conn>();
const epfd = c.epollCreate(O_CLOEXEC);
const eventFd = c.eventfd(0, O_NONBLOCK | O_CLOEXEC);
if (epfd < 0 || eventFd < 0) throw new Error(`epoll/eventfd: ${errName(koffi.errno())}`);
const evs = Buffer.alloc(EV_SIZE * MAX_EVENTS);
const ev = Buffer.alloc(EV_SIZE);
const scratch = Buffer.alloc(8);

function ctl(op: number, fd: number, events: number, data: number): number {
  ev.fill(0);
  ev.writeUInt32LE(events >>> 0, 0);
  ev.writeUInt32LE(data, EV_DATA);
  return c.epollCtl(epfd, op, fd, ev);
}

function newDir(from: number, to: number): Dir {
  const p = Buffer.alloc(8);
  if (c.pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) throw new Error(`pipe2: ${errName(koffi.errno())}`);
  const pipeR = p.readInt32LE(0);
  const pipeW = p.readInt32LE(4);
  // Larger than the default 64 KiB so one splice moves what a fast sender has queued; a
  // refusal (pipe-max-size) only costs more iterations.
  c.fcntl(pipeW, F_SETPIPE_SZ, PIPE_BYTES);
  return { from, to, pipeR, pipeW, inPipe: 0, bytes: 0, eof: false, shut: false };
}

/** Moves what can move now; returns an error text, or undefined (done or waiting for readiness). */
function step(d: Dir): string | undefined {
  for (;;) {
    let progress = false;
    if (!d.eof) {
      const n = c.splice(d.from, null, d.pipeW, null, PIPE_BYTES, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.inPipe += n;
        d.bytes += n;
        progress = true;
      } else if (n === 0) {
        d.eof = true;
        progress = true;
      } else {
        const e = koffi.errno();
        // EAGAIN also when the pipe is full: draining it below makes room.
        if (e !== EAGAIN && e !== EINTR) return `read ${errName(e)}`;
      }
    }
    if (d.inPipe > 0) {
      const n = c.splice(d.pipeR, null, d.to, null, d.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.inPipe -= n;
        progress = true;
      } else if (n < 0) {
        const e = koffi.errno();
        if (e !== EAGAIN && e !== EINTR) return `write ${errName(e)}`;
      }
    }
    if (d.eof && d.inPipe === 0 && !d.shut) {
      // The FIN passes on as a FIN: the other side may still answer (half-close).
      d.shut = true;
      c.shutdown(d.to, SHUT_WR);
    }
    if (!progress || d.shut) return undefined;
  }
}

function finish(conn: Conn, error?: string): void {
  conns.delete(conn.id);
  for (const fd of conn.fds) ctl(EPOLL_CTL_DEL, fd, 0, 0);
  conn.dirs.forEach(closeDir);
  const done: SpliceDone = { id: conn.id, aToB: conn.dirs[0].bytes, bToA: conn.dirs[1].bytes, ...(error ? { error } : {}) };
  port.postMessage(done);
}

function service(conn: Conn): void {
  for (const d of conn.dirs) {
    const err = step(d);
    if (err) return finish(conn, err);
  }
  if (conn.dirs[0].shut && conn.dirs[1].shut) finish(conn);
}

function closeDir(d: Dir): void {
  c.close(d.pipeR);
  c.close(d.pipeW);
}

function add(cmd: SpliceCommand): void {
  // A failure here (no fds left for pipes...) moved no bytes: the main thread falls back to
  // copying in JS, so the connection is served either way.
  const setupFailed = (error: string): void => port.postMessage({ id: cmd.id, aToB: 0, bToA: 0, error, setupFailed: true } satisfies SpliceDone);
  let ab: Dir;
  let ba: Dir;
  try {
    ab = newDir(cmd.a, cmd.b);
  } catch (e) {
    return setupFailed((e as Error).message);
  }
  try {
    ba = newDir(cmd.b, cmd.a);
  } catch (e) {
    closeDir(ab);
    return setupFailed((e as Error).message);
  }
  const conn: Conn = { id: cmd.id, fds: [cmd.a, cmd.b], dirs: [ab, ba] };
  // Edge-triggered: step() always runs until EAGAIN, so every new edge is a new reason to run.
  for (const fd of conn.fds) {
    if (ctl(EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, conn.id) < 0) {
      const error = `epoll_ctl: ${errName(koffi.errno())}`;
      for (const f of conn.fds) ctl(EPOLL_CTL_DEL, f, 0, 0);
      conn.dirs.forEach(closeDir);
      return setupFailed(error);
    }
  }
  conns.set(conn.id, conn);
  service(conn);
}

const WAKE = 0xffffffff;
ctl(EPOLL_CTL_ADD, eventFd, EPOLLIN | EPOLLET, WAKE);
port.postMessage({ ready: true, eventFd });
// Node cannot terminate a thread that never returns to its event loop: at exit the main
// thread raises `stop` and wakes us, and the loop ends by itself.
while (Atomics.load(stopFlag, 0) === 0) {
  const n = c.epollWait(epfd, evs, MAX_EVENTS, 1000);
  if (n < 0) {
    if (koffi.errno() === EINTR) continue;
    throw new Error(`epoll_wait: ${errName(koffi.errno())}`);
  }
  for (let i = 0; i < n; i++) {
    const data = evs.readUInt32LE(i * EV_SIZE + EV_DATA);
    if (data === WAKE) {
      while (c.read(eventFd, scratch, 8) > 0);
      for (let m = receiveMessageOnPort(commands); m; m = receiveMessageOnPort(commands)) add(m.message as SpliceCommand);
      continue;
    }
    const conn = conns.get(data);
    if (conn) service(conn);
  }
}
