// Zero-copy TCP-to-TCP copying (ztunnel 1.20 spliced its plain TCP legs): once both sides
// of a proxied connection are plain kernel sockets, the bytes go socket -> pipe -> socket
// with splice(2) in one thread of this process (splice-worker.ts) and never enter
// JavaScript: no Buffer per read, no write per chunk, no GC, and the main thread is free
// for the legs that need it (TLS, HTTP/2). The semantics are copy.ts's: a FIN passes on as
// a FIN (half-close), an error on either side tears down both, and the byte counts of each
// direction come back for the access log and metrics.
//
// AMBIENT_LAB_SPLICE=0 turns it off (every leg then goes through copy.ts's pumps).
import net from 'node:net';
import tls from 'node:tls';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sysWrite } from '../host/sys.js';

export interface SpliceWorkerData {
  commands: MessagePort;
  /** Int32 set to 1 when the process exits. */
  stop: SharedArrayBuffer;
}

export interface SpliceCommand {
  id: number;
  /** Socket fds; the worker never closes them (their Node sockets do, after it is done). */
  a: number;
  b: number;
}

export interface SpliceDone {
  id: number;
  aToB: number;
  bToA: number;
  /** `read ECONNRESET`, `write EPIPE`...: the first failure, after which both sides are torn down. */
  error?: string;
  /** The thread could not take the sockets (no pipe, no epoll): nothing moved, both still open. */
  setupFailed?: boolean;
}

export const spliceEnabled = (): boolean => process.env.AMBIENT_LAB_SPLICE !== '0';

interface Handle {
  fd?: number;
  reading?: boolean;
  readStop?: () => number;
  readStart?: () => number;
}

const handleOf = (s: net.Socket): Handle | undefined => (s as unknown as { _handle?: Handle })._handle ?? undefined;

/** A connected plain TCP socket whose fd we can hand to the splice thread. */
export function spliceable(s: unknown): s is net.Socket {
  if (!(s instanceof net.Socket) || s instanceof tls.TLSSocket || s.destroyed || s.connecting) return false;
  const h = handleOf(s);
  return typeof h?.fd === 'number' && h.fd >= 0 && typeof h.readStop === 'function';
}

interface Engine {
  commands: MessagePort;
  eventFd: number;
  pending: Map<number, (d: SpliceDone) => void>;
}

let engine: Promise<Engine> | undefined;
let nextId = 1;

function startEngine(): Promise<Engine> {
  const url = new URL(`./splice-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  const { port1, port2 } = new MessageChannel();
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(url, { workerData: { commands: port2, stop } satisfies SpliceWorkerData, transferList: [port2], name: 'splice' });
  const pending = new Map<number, (d: SpliceDone) => void>();
  return new Promise((resolve, reject) => {
    const failAll = (e: Error): void => {
      engine = undefined;
      reject(e);
      for (const [id, done] of pending) done({ id, aToB: 0, bToA: 0, error: `splice thread: ${e.message}` });
      pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`exited (${code})`)));
    worker.on('message', (m: SpliceDone | { ready: true; eventFd: number }) => {
      if ('ready' in m) {
        // process.exit() joins worker threads: this one must leave its loop first.
        process.once('exit', () => {
          Atomics.store(new Int32Array(stop), 0, 1);
          sysWrite(m.eventFd, WAKE);
        });
        return resolve({ commands: port1, eventFd: m.eventFd, pending });
      }
      const done = pending.get(m.id);
      pending.delete(m.id);
      done?.(m);
    });
    // The thread lives as long as the process; it must not keep it alive.
    worker.unref();
    port1.unref();
  });
}

const WAKE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

// Stops libuv reading a socket and returns what Node had already read from it: from here on
// the kernel socket belongs to the splice thread. read() may re-arm libuv's reading (a read
// only happens later, in the event loop), so the stop comes after the drain, in the same tick.
function takeOver(s: net.Socket): Buffer[] {
  // Failures are reported through the result; an unheard 'error' would crash the proxy.
  s.on('error', () => undefined);
  s.pause();
  const chunks: Buffer[] = [];
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) chunks.push(c);
  const h = handleOf(s)!;
  if (h.reading !== false) {
    h.reading = false;
    h.readStop!();
  }
  return chunks;
}

// Undoes takeOver's readStop. The stream itself still waits for the read that takeOver's
// drain started (its state.reading), so only libuv needs starting again.
function giveBack(s: net.Socket): void {
  const h = handleOf(s);
  if (h && h.reading === false && !s.destroyed) {
    h.reading = true;
    h.readStart!();
  }
}

const flushTo = (s: net.Socket, chunks: Buffer[]): Promise<void> =>
  new Promise((resolve, reject) => {
    if (chunks.length === 0 && s.writableLength === 0) return resolve();
    s.write(Buffer.concat(chunks), (e) => (e ? reject(e) : resolve()));
  });

/**
 * Copies `a` <-> `b` (both spliceable) until both directions ended or one failed; destroys
 * both sockets at the end. Byte counts include what Node had read before the hand-over.
 * With `setupFailed` the sockets are left open (reading stopped) and the counts are the bytes
 * already passed on.
 */
export async function spliceBidirectional(a: net.Socket, b: net.Socket): Promise<SpliceDone> {
  let eng: Engine;
  try {
    eng = await (engine ??= startEngine());
  } catch (e) {
    return { id: 0, aToB: 0, bToA: 0, error: `splice thread: ${(e as Error).message}`, setupFailed: true };
  }
  const fromA = takeOver(a);
  const fromB = takeOver(b);
  const early = { aToB: fromA.reduce((n, c) => n + c.length, 0), bToA: fromB.reduce((n, c) => n + c.length, 0) };
  const id = nextId++;
  try {
    // What Node already read must reach the other side before anything the thread moves.
    await Promise.all([flushTo(b, fromA), flushTo(a, fromB)]);
  } catch (e) {
    a.destroy();
    b.destroy();
    return { id, ...early, error: (e as Error).message };
  }
  const fdA = handleOf(a)?.fd ?? -1;
  const fdB = handleOf(b)?.fd ?? -1;
  if (fdA < 0 || fdB < 0) {
    a.destroy();
    b.destroy();
    return { id, ...early, error: 'socket closed before the splice began' };
  }
  const done = await new Promise<SpliceDone>((resolve) => {
    eng.pending.set(id, resolve);
    eng.commands.postMessage({ id, a: fdA, b: fdB } satisfies SpliceCommand);
    sysWrite(eng.eventFd, WAKE);
  });
  // Not taken: the sockets are the caller's again (copy.ts then copies in JS).
  if (done.setupFailed) {
    giveBack(a);
    giveBack(b);
    return { ...done, ...early };
  }
  a.destroy();
  b.destroy();
  return { ...done, aToB: done.aToB + early.aToB, bToA: done.bToA + early.bToA };
}
