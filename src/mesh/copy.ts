// The one bidirectional copy every proxy path uses (ztunnel's copy.rs): bytes both ways,
// a FIN on one side becomes a FIN (or END_STREAM) on the other, and an error or abrupt
// close on either side tears down both. Byte counts feed the access log and metrics.
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { spliceable, spliceBidirectional, spliceEnabled } from './splice.js';

export interface CopyResult {
  /** Bytes read from `a` and written to `b`. */
  aToB: number;
  /** Bytes read from `b` and written to `a`. */
  bToA: number;
  durationMs: number;
  /** First error seen on either side, or why one side vanished before both finished. */
  error?: Error;
}

interface Half {
  bytes: number;
  /** Source's readable side ended and the end was passed on. */
  done: boolean;
}

// Node's sockets end their writable side when the readable ends unless allowHalfOpen is set;
// that would turn a client's shutdown(SHUT_WR) into a full close before the reply arrives.
// TCP_NODELAY on the app-facing sockets too (ztunnel sets it on every socket): what a proxy
// writes is already batched (below), and Nagle would hold back the tail of a response
// until the peer's delayed ACK.
function keepHalfOpen(s: Duplex): void {
  (s as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
  if (s instanceof Socket && !s.destroyed) s.setNoDelay(true);
}

// How much a destination may hold unwritten before the source is paused. Larger than a
// socket's 16 KiB highWaterMark so that a batch (below) can gather several reads.
const MAX_PENDING = 1024 * 1024;

// Reads come in small pieces (TLS hands plaintext up 16 KiB at a time, HTTP/2 one DATA
// chunk at a time): written one by one, each is its own syscall and its own skb through
// every veth after it. Corking the destination for the rest of this event-loop turn turns
// everything read in it into one writev.
// An HTTP/2 stream needs none of this: Node already sends its writes in one go from a
// native immediate, and corking it too would only add an event-loop turn.
function pump(src: Duplex, dst: Duplex, half: Half): void {
  const batch = dst instanceof Socket;
  let corked = false;
  const flush = (): void => {
    if (!corked) return;
    corked = false;
    if (!dst.destroyed && dst.writableCorked) dst.uncork();
  };
  src.on('data', (chunk: Buffer) => {
    half.bytes += chunk.length;
    if (batch && !corked) {
      corked = true;
      dst.cork();
      setImmediate(flush);
    }
    dst.write(chunk);
    if (dst.writableLength >= MAX_PENDING) src.pause();
  });
  dst.on('drain', () => src.resume());
  // Sockets accepted with pauseOnConnect stay paused until someone resumes them.
  src.resume();
  src.on('end', () => {
    half.done = true;
    flush();
    dst.end();
  });
}

export function copyBidirectional(a: Duplex, b: Duplex): Promise<CopyResult> {
  if (spliceEnabled() && spliceable(a) && spliceable(b)) return copySpliced(a, b);
  return copyPumped(a, b);
}

// Two plain TCP sockets: the kernel moves the bytes (splice.ts).
async function copySpliced(a: Socket, b: Socket): Promise<CopyResult> {
  const start = performance.now();
  keepHalfOpen(a);
  keepHalfOpen(b);
  const d = await spliceBidirectional(a, b);
  if (d.setupFailed) {
    const r = await copyPumped(a, b);
    return { ...r, aToB: r.aToB + d.aToB, bToA: r.bToA + d.bToA, durationMs: performance.now() - start };
  }
  return { aToB: d.aToB, bToA: d.bToA, durationMs: performance.now() - start, ...(d.error ? { error: new Error(d.error) } : {}) };
}

function copyPumped(a: Duplex, b: Duplex): Promise<CopyResult> {
  const start = performance.now();
  keepHalfOpen(a);
  keepHalfOpen(b);
  const ab: Half = { bytes: 0, done: false };
  const ba: Half = { bytes: 0, done: false };
  return new Promise((resolve) => {
    let error: Error | undefined;
    let closed = 0;
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      resolve({ aToB: ab.bytes, bToA: ba.bytes, durationMs: performance.now() - start, ...(error ? { error } : {}) });
    };
    const teardown = (e: Error): void => {
      error ??= e;
      a.destroy();
      b.destroy();
    };
    const onClose = (other: Duplex, name: string) => () => {
      closed++;
      // A side that closes before both directions finished was reset or destroyed: the
      // other side must not hang waiting for bytes that will never come.
      if (!(ab.done && ba.done) && !other.destroyed) teardown(new Error(`${name} closed before the copy finished`));
      if (closed === 2) finish();
    };
    a.on('error', teardown);
    b.on('error', teardown);
    a.on('close', onClose(b, 'downstream'));
    b.on('close', onClose(a, 'upstream'));
    pump(a, b, ab);
    pump(b, a, ba);
    // Either side may already be gone when we are handed it.
    if (a.destroyed || b.destroyed) teardown(new Error('socket already closed'));
  });
}
