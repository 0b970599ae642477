// An upstream connection as undici sees it, when what carries it is an HTTP/2 stream (an HBONE
// CONNECT at a waypoint or a sidecar). undici ends a keep-alive connection it no longer wants
// (idle past the idle timeout, or the server said `Connection: close`) by destroying its
// socket, and destroying an HTTP/2 stream sends RST_STREAM(INTERNAL_ERROR): the destination's
// ztunnel then resets its connection to the pod and logs a failure for what was a normal end.
// Through this adapter such an end becomes what closing a TCP connection is: END_STREAM (the
// ztunnel passes a FIN to the pod), and the stream closes once the other side has ended too;
// a peer that never ends is reset after a grace period. Any other destroy (a request aborted by
// a timeout or by the client going away) still resets at once: the peer must not take a cut
// request for a complete one.
import { Duplex } from 'node:stream';

/** How long an ended stream waits for the peer's end before it is reset. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * undici's InformationalErrors that end a connection after its last response: idle past the
 * idle timeout, or the response said `Connection: close`. Its 'aborted' (a request cut short)
 * is a reset.
 */
const NORMAL_ENDS = new Set(['socket idle timeout', 'reset']);

export const isNormalClose = (err: Error | null): boolean =>
  !err || ((err as { code?: string }).code === 'UND_ERR_INFO' && NORMAL_ENDS.has(err.message));

/** Ends `inner` gracefully: END_STREAM now, and reset only if it is still open after `graceMs`. */
export function endGracefully(inner: Duplex, graceMs = CLOSE_GRACE_MS): void {
  if (inner.destroyed) return;
  // Whatever still arrives has no reader any more; reading it lets the peer's end arrive.
  inner.removeAllListeners('data');
  inner.on('data', () => undefined);
  inner.resume();
  const timer = setTimeout(() => inner.destroy(), graceMs);
  timer.unref();
  inner.once('close', () => clearTimeout(timer));
  inner.end();
}

export function gracefulClose(inner: Duplex, graceMs = CLOSE_GRACE_MS): Duplex {
  const outer = new Duplex({
    allowHalfOpen: true,
    read() {
      inner.resume();
    },
    write(chunk: Buffer, encoding, cb) {
      inner.write(chunk, encoding, cb);
    },
    final(cb) {
      inner.end(cb);
    },
    destroy(err, cb) {
      if (isNormalClose(err)) endGracefully(inner, graceMs);
      else inner.destroy(err ?? undefined);
      cb(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    if (!outer.push(chunk)) inner.pause();
  });
  inner.once('end', () => outer.push(null));
  inner.on('error', (e: Error) => outer.destroy(e));
  inner.once('close', () => {
    if (!outer.destroyed) outer.destroy();
  });
  return outer;
}
