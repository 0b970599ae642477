// The HBONE terminating side (ztunnel proxy/inbound.rs + h2 server): mTLS presenting the
// identity of the workload the connection was addressed to, then HTTP/2 CONNECT streams.
// This module owns the protocol checks (400/404 for malformed requests); what a CONNECT
// means (RBAC, where to connect) is decided by the caller's onRequest.
import http2 from 'node:http2';
import tls from 'node:tls';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { SpiffeId } from './identity.js';
import { HBONE_ALPN, secureContextFor, verifyPeer, type MeshTls } from './tls.js';
import { hboneSessionOptions, widenConnectionWindow } from './h2-settings.js';
import { resetWrapped } from './tcp-reset.js';

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
  /** Connections and streams refused before onRequest (for the access log). */
  onRefused?(r: HboneRefusal): void;
  /** ztunnel refuses an authority whose IP differs from the original destination (400). */
  requireAuthorityOnOrigDst?: boolean;
  handshakeTimeoutMs?: number;
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
}

export function createHboneServer(opts: HboneServerOptions): HboneServer {
  const stats: HboneServerStats = { handshakes: 0, streams: 0, refused: 0 };
  const requireMatch = opts.requireAuthorityOnOrigDst ?? true;
  const h2 = http2.createServer({ ...hboneSessionOptions });
  const conns = new WeakMap<http2.Http2Session, ConnInfo>();
  const live = new Set<Duplex>();

  const refuse = (r: HboneRefusal): void => {
    stats.refused++;
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
    stats.streams++;
    const authority = headers[':authority'];
    const respond = (status: number, reason: string): void => {
      refuse({ reason, status, peerIp: info.peer.ip, origDst: info.origDst, ...(authority ? { authority } : {}) });
      if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': status }, { endStream: true });
    };
    if (headers[':method'] !== 'CONNECT') return respond(404, `method ${headers[':method']} is not CONNECT`);
    const target = parseAuthority(authority);
    if (!target) return respond(400, `authority ${authority ?? '(none)'} is not ip:port`);
    if (requireMatch && target.ip !== info.origDst.ip) {
      return respond(400, `authority ${authority} does not match the original destination ${info.origDst.ip}`);
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
        stream.respond({ ':status': 200 });
        live.add(stream);
        stream.once('close', () => live.delete(stream));
        return stream;
      },
      reject(status, reason) {
        if (answered) return;
        answered = true;
        respond(status, reason);
      },
    };
    Promise.resolve(opts.onRequest(req)).catch((e: Error) => req.reject(503, `handler failed: ${e.message}`));
  });

  async function handle(raw: net.Socket, origDst: Address = { ip: raw.localAddress!, port: raw.localPort! }): Promise<void> {
    const peerIp = raw.remoteAddress ?? '';
    const peerPort = raw.remotePort ?? 0;
    raw.on('error', () => undefined);
    const localIdentity = opts.identityFor(origDst.ip);
    if (!localIdentity) {
      refuse({ reason: `no workload at ${origDst.ip} to serve as`, peerIp, origDst });
      raw.destroy();
      return;
    }
    let secureContext: tls.SecureContext;
    try {
      secureContext = await secureContextFor(opts.tls, localIdentity);
    } catch (e) {
      refuse({ reason: `no certificate: ${(e as Error).message}`, peerIp, origDst });
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
    sock.on('error', (e: Error) => {
      if (!handshaken) refuse({ reason: `TLS handshake failed: ${e.message}`, peerIp, origDst });
    });
    let handshaken = false;
    const timer = setTimeout(() => {
      if (!handshaken) sock.destroy(new Error('TLS handshake timeout'));
    }, opts.handshakeTimeoutMs ?? 10_000);
    timer.unref();
    // Node completes a TLS 1.3 handshake whatever the client's chain (its verify callback
    // accepts all and leaves the verdict to us), so a bad peer can no longer get a handshake
    // alert as from ztunnel's BoringSSL: reset the TCP connection instead, which the client
    // sees at once (ECONNRESET) rather than as a quiet close of a session it thinks is fine.
    const reject = (reason: string): void => {
      refuse({ reason, peerIp, origDst });
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
      const info: ConnInfo = { origDst, localIdentity, peer: { identity: peer.identity, ip: peerIp, port: peerPort } };
      // 'session' fires synchronously inside emit('connection'), so the session can be tagged there.
      const tag = (session: http2.ServerHttp2Session): void => void conns.set(session, info);
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
    close() {
      for (const s of live) s.destroy();
      live.clear();
    },
  };
}
