// The HBONE terminating side (ztunnel proxy/inbound.rs + h2 server): mTLS presenting the
// identity of the workload the connection was addressed to, then HTTP/2 CONNECT streams.
// This module owns the protocol checks (400/404 for malformed requests); what a CONNECT
// means (RBAC, where to connect) is decided by the caller's onRequest.
import http2 from 'node:http2';
import tls from 'node:tls';
import net from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import type { SpiffeId } from './identity.js';
import { HBONE_ALPN, secureContextFor, verifyPeer, type MeshTls } from './tls.js';
import { widenConnectionWindow } from './h2-settings.js';
import { resetWrapped } from './tcp-reset.js';
import { HBONE_LIMITS, hboneServerOptions, sessionGuard, type HboneLimits, type HboneRefusalKind, type SessionGuard } from './hbone-limits.js';
import type { RefusalCounter } from '../proxy/refusals.js';

export interface Address {
  ip: string;
  port: number;
}

export type HboneRejectStatus = 400 | 401 | 404 | 503;

export interface HboneRequest {
  authority: string;
  /** The parsed authority: where the client wants its bytes to go. */
  target: Address;
  /** Where the TCP connection was addressed before TPROXY (its local address). */
  origDst: Address;
  /** The TLS peer: its SPIFFE identity and the connection's source address. */
  peer: { identity: SpiffeId; ip: string; port: number };
  /** The identity this server presented. */
  localIdentity: SpiffeId;
  headers: http2.IncomingHttpHeaders;
  /** Client IP from `forwarded: for=...` (waypoints send it on behalf of the real client). */
  forwardedFor?: string;
  /** Responds 200 and hands over the tunnel's stream. */
  accept(): Duplex;
  reject(status: HboneRejectStatus, reason: string): void;
}

export interface HboneRefusal {
  /** The lab_refused_total reason label. */
  kind: HboneRefusalKind;
  reason: string;
  peerIp?: string;
  origDst: Address;
  status?: number;
  authority?: string;
}

export interface HboneServerOptions {
  tls: MeshTls;
  /** Identity to present for a connection addressed to `ip`; undefined refuses the connection. */
  identityFor(ip: string): SpiffeId | undefined;
  onRequest(req: HboneRequest): void | Promise<void>;
  /**
   * Connections and streams this server refused or ended itself (for the access log), each
   * reported once. A request the handler rejects (req.reject) is the handler's to log.
   */
  onRefused?(r: HboneRefusal): void;
  /** Counts every onRefused under lab_refused_total{listener="hbone"}. */
  refusals?: RefusalCounter;
  /** ztunnel refuses an authority whose IP differs from the original destination (400). */
  requireAuthorityOnOrigDst?: boolean;
  /** Overrides of HBONE_LIMITS (tests use short timeouts). */
  limits?: Partial<HboneLimits>;
}

export interface HboneServerStats {
  /** Completed TLS handshakes (a pooled client adds none per stream). */
  handshakes: number;
  streams: number;
  refused: number;
}

export interface HboneServer {
  /** Takes an accepted TCP socket (created with pauseOnConnect); `origDst` defaults to its local address. */
  handle(sock: net.Socket, origDst?: Address): void;
  stats: HboneServerStats;
  /**
   * Graceful shutdown: GOAWAY on every session (and on any that opens later), so peers open
   * new sessions elsewhere while the streams already open run to their end; a session closes
   * once its last stream has.
   */
  drain(): void;
  /**
   * Resolves when every session has closed: a stream's last bytes may still wait in its HTTP/2
   * send buffer (the peer's window) after the copy feeding it finished, and exiting then would
   * cut them off.
   */
  drained(): Promise<void>;
  close(): void;
}

/** `ip:port` with an IPv4 address or `[v6]:port`; undefined when it is anything else. */
export function parseAuthority(authority: string | undefined): Address | undefined {
  if (!authority) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const ip = m[1] ?? m[2];
  const port = Number(m[3]);
  if (!net.isIP(ip) || port < 1 || port > 65535) return undefined;
  return { ip, port };
}

/** First `for=` of a Forwarded header (RFC 7239), without quotes, brackets or port. */
export function parseForwardedFor(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const m = /(?:^|[;,\s])for=("?)([^";,]+)\1/i.exec(v);
  if (!m) return undefined;
  let host = m[2];
  const br = /^\[([^\]]+)\]/.exec(host);
  if (br) host = br[1];
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(host)) host = host.slice(0, host.lastIndexOf(':'));
  return net.isIP(host) ? host : undefined;
}

interface ConnInfo {
  origDst: Address;
  peer: HboneRequest['peer'];
  localIdentity: SpiffeId;
  guard: SessionGuard;
}

/**
 * A stream the client reset while the handler was still deciding (dialing upstream): the
 * handler gets a duplex that is already failing, so its copy and access log end as for any
 * reset, instead of respond() throwing on a destroyed stream and taking the proxy down.
 */
function resetBeforeAnswer(): Duplex {
  const gone = new PassThrough();
  gone.on('error', () => undefined);
  gone.destroy(new Error('CONNECT stream reset by the client before it was answered'));
  return gone;
}

export function createHboneServer(opts: HboneServerOptions): HboneServer {
  const stats: HboneServerStats = { handshakes: 0, streams: 0, refused: 0 };
  const requireMatch = opts.requireAuthorityOnOrigDst ?? true;
  const limits: HboneLimits = { ...HBONE_LIMITS, ...opts.limits };
  const h2 = http2.createServer(hboneServerOptions(limits));
  const conns = new WeakMap<http2.Http2Session, ConnInfo>();
  const live = new Set<Duplex>();

  // The one place a refusal is counted and reported: each is logged once, by onRefused.
  const refuse = (r: HboneRefusal): void => {
    stats.refused++;
    opts.refusals?.inc('hbone', r.kind);
    opts.onRefused?.(r);
  };

  const sessions = new Set<http2.ServerHttp2Session>();
  let draining = false;
  h2.on('session', (session) => {
    widenConnectionWindow(session);
    if (draining) return void session.close();
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  // Session/socket errors are per connection; they must never take the proxy down.
  h2.on('sessionError', () => undefined);

  h2.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const info = conns.get(stream.session as http2.Http2Session);
    if (!info) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const authority = headers[':authority'];
    if (!info.guard.admit(stream)) return;
    stats.streams++;
    const respond = (status: number): void => {
      if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': status }, { endStream: true });
    };
    const refuseStream = (kind: HboneRefusalKind, status: number, reason: string): void => {
      refuse({ kind, reason, status, peerIp: info.peer.ip, origDst: info.origDst, ...(authority ? { authority } : {}) });
      respond(status);
    };
    if (headers[':method'] !== 'CONNECT') return refuseStream('bad_request', 404, `method ${headers[':method']} is not CONNECT`);
    const target = parseAuthority(authority);
    if (!target) return refuseStream('bad_request', 400, `authority ${authority ?? '(none)'} is not ip:port`);
    if (requireMatch && target.ip !== info.origDst.ip) {
      return refuseStream('bad_request', 400, `authority ${authority} does not match the original destination ${info.origDst.ip}`);
    }
    let answered = false;
    const forwardedFor = parseForwardedFor(headers.forwarded);
    const req: HboneRequest = {
      authority: authority!,
      target,
      origDst: info.origDst,
      peer: info.peer,
      localIdentity: info.localIdentity,
      headers,
      ...(forwardedFor ? { forwardedFor } : {}),
      accept() {
        if (answered) throw new Error('HBONE request already answered');
        answered = true;
        if (stream.destroyed || stream.closed) return resetBeforeAnswer();
        stream.respond({ ':status': 200 });
        live.add(stream);
        stream.once('close', () => live.delete(stream));
        return stream;
      },
      // The handler logs its own rejections (RBAC, unknown destination, upstream down).
      reject(status) {
        if (answered) return;
        answered = true;
        respond(status);
      },
    };
    // The handler runs after the rest of the bytes already read: a CONNECT whose RST_STREAM
    // came in the same read (a rapid-reset flood) is dropped before it costs an upstream dial.
    setImmediate(() => {
      if (stream.destroyed || stream.closed) return;
      Promise.resolve(opts.onRequest(req)).catch((e: Error) => {
        if (answered) return;
        answered = true;
        refuseStream('handler_failed', 503, `handler failed: ${e.message}`);
      });
    });
  });

  async function handle(raw: net.Socket, origDst: Address = { ip: raw.localAddress!, port: raw.localPort! }): Promise<void> {
    const peerIp = raw.remoteAddress ?? '';
    const peerPort = raw.remotePort ?? 0;
    raw.on('error', () => undefined);
    const localIdentity = opts.identityFor(origDst.ip);
    if (!localIdentity) {
      refuse({ kind: 'no_identity', reason: `no workload at ${origDst.ip} to serve as`, peerIp, origDst });
      raw.destroy();
      return;
    }
    let secureContext: tls.SecureContext;
    try {
      secureContext = await secureContextFor(opts.tls, localIdentity);
    } catch (e) {
      refuse({ kind: 'no_certificate', reason: `no certificate: ${(e as Error).message}`, peerIp, origDst });
      raw.destroy();
      return;
    }
    if (raw.destroyed) return;
    const sock = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: [HBONE_ALPN],
    });
    opts.tls.keyLog?.attach(sock);
    live.add(sock);
    sock.once('close', () => live.delete(sock));
    // One refusal per connection that never completes its handshake: an error, or silence.
    let handshaken = false;
    let handshakeRefused = false;
    const refuseHandshake = (kind: HboneRefusalKind, reason: string): void => {
      if (handshaken || handshakeRefused) return;
      handshakeRefused = true;
      refuse({ kind, reason, peerIp, origDst });
    };
    sock.on('error', (e: Error) => refuseHandshake('tls_handshake', `TLS handshake failed: ${e.message}`));
    sock.once('close', () => {
      clearTimeout(timer);
      refuseHandshake('tls_handshake', 'connection closed before the TLS handshake completed');
    });
    const timer = setTimeout(() => {
      refuseHandshake('handshake_timeout', `TLS handshake not completed within ${limits.handshakeTimeoutMs} ms`);
      sock.destroy();
      raw.destroy();
    }, limits.handshakeTimeoutMs);
    timer.unref();
    // Node completes a TLS 1.3 handshake whatever the client's chain (its verify callback
    // accepts all and leaves the verdict to us), so a bad peer can no longer get a handshake
    // alert as from ztunnel's BoringSSL: reset the TCP connection instead, which the client
    // sees at once (ECONNRESET) rather than as a quiet close of a session it thinks is fine.
    const reject = (reason: string): void => {
      refuse({ kind: 'peer_rejected', reason, peerIp, origDst });
      resetWrapped(raw, sock);
    };
    sock.once('secure', () => {
      handshaken = true;
      clearTimeout(timer);
      stats.handshakes++;
      if (sock.alpnProtocol !== HBONE_ALPN) return reject(`ALPN ${sock.alpnProtocol || '(none)'} is not h2`);
      const peer = verifyPeer(sock, opts.tls.caPem);
      if (!peer.ok) return reject(peer.reason);
      if (peer.identity.trustDomain !== localIdentity.trustDomain) {
        return reject(`client trust domain ${peer.identity.trustDomain} != ${localIdentity.trustDomain}`);
      }
      const connPeer = { identity: peer.identity, ip: peerIp, port: peerPort };
      // 'session' fires synchronously inside emit('connection'), so the session can be tagged there.
      const tag = (session: http2.ServerHttp2Session): void => {
        const guard = sessionGuard(session, limits, (kind, reason) => refuse({ kind, reason, peerIp, origDst }));
        conns.set(session, { origDst, localIdentity, peer: connPeer, guard });
      };
      h2.once('session', tag);
      // tls.Server clears this flag when it hands a socket on; http2 waits for it (for a
      // 'secureConnect' a server-side socket never emits) before reading the session.
      (sock as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      h2.emit('connection', sock);
      h2.off('session', tag);
    });
  }

  return {
    handle: (sock, origDst) => void handle(sock, origDst),
    stats,
    drain() {
      draining = true;
      for (const s of sessions) s.close();
    },
    async drained() {
      while (sessions.size > 0 || live.size > 0) await new Promise((r) => setTimeout(r, 50));
    },
    close() {
      for (const s of live) s.destroy();
      live.clear();
    },
  };
}
