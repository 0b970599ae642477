// The HBONE originating side (ztunnel proxy/outbound.rs + h2 client): one mTLS HTTP/2
// session to a peer's :15008, CONNECT streams on it. Sessions are normally obtained from
// the pool (pool.ts), which is the only caller of openHboneSession in the proxies.
import http2 from 'node:http2';
import tls from 'node:tls';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { formatSpiffe, type SpiffeId } from './identity.js';
import { HBONE_ALPN, expectIdentity, secureContextFor, type MeshTls } from './tls.js';
import { hboneSessionOptions, widenConnectionWindow } from './h2-settings.js';
import type { Address } from './hbone-server.js';

export { HBONE_PORT } from './ports.js';

export interface HboneSessionOptions {
  tls: MeshTls;
  /** A TCP socket to the peer, connecting or connected (spoofed-source in ztunnel). */
  socket: net.Socket;
  /** Our identity: the client certificate presented. */
  source: SpiffeId;
  /** The identity the server must prove (its URI SAN). */
  expected: SpiffeId;
  timeoutMs?: number;
}

export class HboneError extends Error {
  constructor(message: string, readonly status?: number, readonly code = 'ERR_HBONE') {
    super(message);
    this.name = 'HboneError';
  }
}

/** Resolves once TLS is up and the peer's identity checked; the session can take CONNECTs. */
export async function openHboneSession(opts: HboneSessionOptions): Promise<http2.ClientHttp2Session> {
  const secureContext = await secureContextFor(opts.tls, opts.source);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      socket: opts.socket,
      secureContext,
      ALPNProtocols: [HBONE_ALPN],
      rejectUnauthorized: true,
      checkServerIdentity: expectIdentity(opts.expected),
    });
    // The peer's FIN must not close our side at once (and Node's http2 with it, cancelling
    // every stream): streams it finished may still hold bytes not passed on (finishOnPeerEnd).
    sock.allowHalfOpen = true;
    opts.tls.keyLog?.attach(sock);
    const timer = setTimeout(() => sock.destroy(new HboneError('HBONE handshake timeout', undefined, 'ETIMEDOUT')), opts.timeoutMs ?? 10_000);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    opts.socket.once('error', fail);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      sock.off('error', fail);
      opts.socket.off('error', fail);
      if (sock.alpnProtocol !== HBONE_ALPN) return fail(new HboneError(`server did not select ALPN h2 (${sock.alpnProtocol})`));
      const session = http2.connect(`https://${opts.socket.remoteAddress ?? 'hbone'}`, {
        ...hboneSessionOptions,
        createConnection: () => sock,
      });
      widenConnectionWindow(session);
      session.on('error', () => undefined);
      keepAlive(session, sock);
      finishOnPeerEnd(session, sock);
      resolve(session);
    });
  });
}

/** ztunnel's client do_ping_pong (proxy/h2.rs): a PING every 10 s, no answer within 20 s ends the session. */
const CLIENT_PING_INTERVAL_MS = 10_000;
const CLIENT_PING_TIMEOUT_MS = 20_000;

/**
 * A session whose peer went away must end its streams, so that the connections they carry are
 * torn down instead of hanging. A peer that exits while a stream of ours is backed up (a slow
 * reader downstream) can leave the session's socket in CLOSE-WAIT with nobody reading its EOF;
 * a PING is a write, and the dead peer's RST (or the missing answer) ends it. The socket's close
 * ends the session too.
 */
function keepAlive(session: http2.ClientHttp2Session, sock: tls.TLSSocket): void {
  let waiting: NodeJS.Timeout | undefined;
  const gone = (why: string): void => {
    if (!session.destroyed) session.destroy(new HboneError(`HBONE session ended: ${why}`, undefined, 'ECONNRESET'));
  };
  const timer = setInterval(() => {
    if (waiting || session.destroyed) return;
    waiting = setTimeout(() => gone(`no PING answer within ${CLIENT_PING_TIMEOUT_MS} ms`), CLIENT_PING_TIMEOUT_MS);
    waiting.unref();
    try {
      // An error here is a PING cancelled by the session closing (a GOAWAY'd session still
      // carrying streams): not a dead peer. Only silence or the socket's close end it.
      session.ping(() => { clearTimeout(waiting); waiting = undefined; });
    } catch {
      clearTimeout(waiting);
      waiting = undefined;
    }
  }, CLIENT_PING_INTERVAL_MS);
  timer.unref();
  const stop = (): void => { clearInterval(timer); clearTimeout(waiting); };
  session.once('close', stop);
  sock.once('close', () => gone('the connection closed'));
}

/** The CONNECT streams of each session that have not closed (hboneConnect adds them). */
const openStreams = new WeakMap<http2.ClientHttp2Session, Set<http2.ClientHttp2Stream>>();

/**
 * The peer's FIN: a draining proxy (graceful restart) closes a session once it has sent the
 * last byte of its last stream, or a peer exited. Whatever it sent has arrived by then, but a
 * stream read slowly (its downstream backed up) may still hold megabytes in its buffer:
 * destroying the session there cut off the tail of a long transfer (issue 13). So the
 * session takes no new stream, a stream whose peer side had ended (END_STREAM) is left to
 * deliver what it holds, one still expecting bytes that will never come is ended with an
 * error, and Node ends the session once its last stream is gone.
 */
function finishOnPeerEnd(session: http2.ClientHttp2Session, sock: tls.TLSSocket): void {
  sock.once('end', () => {
    if (session.destroyed) return;
    session.close();
    for (const stream of openStreams.get(session) ?? []) {
      if (!peerEnded(stream)) stream.destroy(new HboneError('the HBONE peer closed the connection before the stream ended', undefined, 'ECONNRESET'));
    }
  });
}

/** Has the peer sent everything it will on this stream (END_STREAM, or the stream closed)? */
export const peerEnded = (stream: http2.ClientHttp2Stream): boolean => stream.closed || stream.state?.remoteClose === 1;

export interface ConnectHeaders {
  /** `k8s.cluster.name=...,k8s.namespace.name=...` of the source workload. */
  baggage?: string;
  /** Client IP, sent as `forwarded: for=<ip>`. */
  forwardedFor?: string;
  traceparent?: string;
}

/** W3C trace context with a fresh trace and span id, not sampled (what ztunnel sends). */
export const newTraceparent = (): string => `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`;

export function formatAuthority(a: Address): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

/** Sends CONNECT <authority>; resolves with the tunnel stream on 200, rejects with HboneError(status) otherwise. */
export function hboneConnect(session: http2.ClientHttp2Session, authority: string, h: ConnectHeaders = {}): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    const headers: http2.OutgoingHttpHeaders = { ':method': 'CONNECT', ':authority': authority };
    if (h.baggage) headers.baggage = h.baggage;
    if (h.forwardedFor) headers.forwarded = `for=${h.forwardedFor.includes(':') ? `"[${h.forwardedFor}]"` : h.forwardedFor}`;
    headers.traceparent = h.traceparent ?? newTraceparent();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (e) {
      return reject(e);
    }
    let open = openStreams.get(session);
    if (!open) openStreams.set(session, (open = new Set()));
    open.add(stream);
    stream.once('close', () => open.delete(stream));
    const onError = (e: Error): void => reject(e);
    // Built only if the stream closes before any response: an Error (with its stack) per
    // normal stream close was measurable in the per-connection cost.
    const onEarlyClose = (): void => reject(new HboneError(`CONNECT ${authority}: stream closed (rst ${stream.rstCode}) before a response`));
    stream.once('error', onError);
    stream.once('close', onEarlyClose);
    stream.once('response', (res) => {
      const status = Number(res[':status']);
      stream.off('error', onError);
      stream.off('close', onEarlyClose);
      if (status === 200) {
        stream.on('error', () => undefined);
        return resolve(stream);
      }
      stream.on('error', () => undefined);
      stream.close();
      reject(new HboneError(`CONNECT ${authority}: ${status}`, status, `HBONE_${status}`));
    });
  });
}

export const describeSession = (src: SpiffeId, dst: SpiffeId, addr: Address): string =>
  `${formatSpiffe(src)} -> ${formatSpiffe(dst)} @ ${formatAuthority(addr)}`;
