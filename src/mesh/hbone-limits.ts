// What the HBONE server (ztunnel, waypoint and sidecar :15008) bounds against hostile or
// broken peers, and where each value comes from. nghttp2 enforces some of these itself; the
// rest are watched per session here (sessionGuard). Every limit that ends a stream or a
// connection reports it once, with a reason label for lab_refused_total.
import http2 from 'node:http2';
import { hboneSessionOptions, hboneSettings } from './h2-settings.js';

export interface HboneLimits {
  /** A connection whose TLS handshake is not done by then is closed. */
  handshakeTimeoutMs: number;
  /** Open CONNECT streams per connection; one more is refused with RST_STREAM(REFUSED_STREAM). */
  maxConcurrentStreams: number;
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS as advertised. nghttp2 ends the whole connection
   * (PROTOCOL_ERROR) when a client goes past the value it acknowledged, so the advertised
   * value sits above maxConcurrentStreams: streams in between are refused one by one.
   */
  advertisedMaxConcurrentStreams: number;
  /** A connection that has carried no stream for this long is closed (GOAWAY NO_ERROR). */
  idleTimeoutMs: number;
  /** A PING every this often; no answer within pingTimeoutMs closes the connection. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a larger header block is reset on its own stream. */
  maxHeaderListSize: number;
  /** Header fields per stream; more are reset on their own stream. */
  maxHeaderListPairs: number;
}

export const HBONE_LIMITS: HboneLimits = {
  // ztunnel sets no deadline of its own on the inbound TLS accept (proxy/inbound.rs); Envoy
  // waits for a ClientHello at most listener_filters_timeout (15 s). 10 s, as the lab's
  // client side (hbone-client.ts) waits for the same handshake.
  handshakeTimeoutMs: 10_000,
  // Istio's pools open at most 100 streams per HBONE connection (ztunnel config.rs
  // DEFAULT_POOL_MAX_STREAMS_PER_CONNECTION = 100, "spec recommended minimum 100").
  maxConcurrentStreams: 100,
  // ztunnel's HBONE server advertises 200 (proxy/h2/server.rs max_concurrent_streams(200),
  // "default from hyper").
  advertisedMaxConcurrentStreams: 200,
  // ztunnel's server has no idle timeout (its pools release an unused connection after
  // POOL_UNUSED_RELEASE_TIMEOUT, 5 min; the lab's pool after 60 s): 10 min leaves the
  // client to close first, so a CONNECT never races the server's GOAWAY.
  idleTimeoutMs: 10 * 60_000,
  // ztunnel's do_ping_pong (proxy/h2.rs): PING_INTERVAL 10 s, PING_TIMEOUT 20 s. A peer that
  // stopped reading (its TCP window full) or vanished cannot answer, so this also bounds
  // slow and dead clients.
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
  // ztunnel's HBONE server: max_header_list_size(65536) ("64KB max ... we know we are going
  // to receive a bounded set of headers").
  maxHeaderListSize: 65_536,
  // Envoy's max_headers_count default (Istio keeps it); a CONNECT carries fewer than 10.
  maxHeaderListPairs: 100,
};

/** http2.createServer options carrying the limits nghttp2 and Node enforce themselves. */
export function hboneServerOptions(l: HboneLimits): http2.ServerOptions {
  return {
    ...hboneSessionOptions,
    settings: { ...hboneSettings, maxConcurrentStreams: l.advertisedMaxConcurrentStreams, maxHeaderListSize: l.maxHeaderListSize },
    maxHeaderListPairs: l.maxHeaderListPairs,
    // Node's defaults, set on purpose: past them the session is destroyed (a flood).
    // Frames the session rejects as invalid, streams it refuses in a row, SETTINGS entries
    // per frame, and our own PINGs awaiting an ACK.
    maxSessionInvalidFrames: 1000,
    maxSessionRejectedStreams: 100,
    maxSettings: 32,
    maxOutstandingPings: 10,
  };
}

/** The reason labels of lab_refused_total{listener="hbone"}. */
export type HboneRefusalKind =
  | 'no_identity'
  | 'no_certificate'
  | 'tls_handshake'
  | 'handshake_timeout'
  | 'peer_rejected'
  | 'bad_request'
  | 'handler_failed'
  | 'stream_limit'
  | 'header_limit'
  | 'idle_timeout'
  | 'ping_timeout'
  | 'flood'
  | 'protocol_error';

export type SessionRefusal = (kind: HboneRefusalKind, reason: string) => void;

export interface SessionGuard {
  /** Admits a new stream (true) or refuses it with REFUSED_STREAM (false). */
  admit(stream: http2.ServerHttp2Stream): boolean;
}

/**
 * Session errors this server caused by ending the session: nghttp2's (ERR_HTTP2_ERROR: a
 * flood of PINGs/SETTINGS/RSTs, a protocol or header compression error) and Node's limits
 * (ERR_HTTP2_TOO_MANY_INVALID_FRAMES). A socket error (the peer left) or the peer's own
 * GOAWAY with an error code (ERR_HTTP2_SESSION_ERROR) is not a refusal.
 */
export function sessionErrorKind(e: Error): HboneRefusalKind | undefined {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (!code.startsWith('ERR_HTTP2_') || code === 'ERR_HTTP2_SESSION_ERROR') return undefined;
  return /flood|TOO_MANY|calm/i.test(`${code} ${e.message}`) ? 'flood' : 'protocol_error';
}

/**
 * Watches one authenticated session: its open streams against the limit, the idle timer,
 * the PING keepalive, session errors, and streams the HTTP/2 layer reset before they
 * reached us (header limits), which it counts from the stream ids it never saw.
 */
export function sessionGuard(session: http2.ServerHttp2Session, l: HboneLimits, refuse: SessionRefusal): SessionGuard {
  let open = 0;
  let seen = 0;
  let skippedCounted = 0;
  let idle: NodeJS.Timeout | undefined;
  let pingDeadline: NodeJS.Timeout | undefined;
  let ended = false;

  const end = (): void => {
    ended = true;
    clearTimeout(idle);
    clearTimeout(pingDeadline);
    clearInterval(pinger);
  };
  const fail = (kind: HboneRefusalKind, reason: string): void => {
    if (ended) return;
    refuse(kind, reason);
    end();
    session.destroy();
  };
  // Client stream ids increase (1, 3, 5, ...): an id we never saw was reset below us, or skipped
  // by the client, which HTTP/2 allows (RFC 9113 5.1.1: the lower ids are closed, never opened).
  // A reset stream still arrived as a HEADERS frame, 9 bytes at least, since the last count: the
  // bytes read bound the resets, so a peer jumping to stream 2^31-1 is not counted (or looped
  // over) as a billion refusals. (A fuzzed jump to 0x576680e1 once blocked the event loop here
  // until the heap ran out.)
  let bytesAtCount = 0;
  const countSkipped = (lastId: number | undefined): void => {
    if (!lastId) return;
    const gap = (lastId + 1) / 2 - seen - skippedCounted;
    if (gap <= 0) return;
    skippedCounted += gap;
    const bytes = session.socket?.bytesRead ?? bytesAtCount;
    const skipped = Math.max(0, Math.min(gap, Math.floor((bytes - bytesAtCount) / 9)));
    bytesAtCount = bytes;
    for (let i = 0; i < skipped; i++) {
      refuse('header_limit', `stream reset by the HTTP/2 layer: header list over ${l.maxHeaderListSize} bytes or over ${l.maxHeaderListPairs} fields`);
    }
  };
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (open > 0 || ended) return;
      refuse('idle_timeout', `no stream for ${l.idleTimeoutMs} ms`);
      end();
      session.close();
    }, l.idleTimeoutMs);
    idle.unref();
  };
  const pinger = setInterval(() => {
    // A GOAWAY'd session (this server draining for a graceful restart, or the client's own
    // GOAWAY) is still carrying its open streams to their end, but Node sends no PING on it:
    // ping() calls back at once with ERR_HTTP2_PING_CANCEL. Taking that for a dead peer
    // destroyed the session mid-transfer and cut off whatever the stream still had to send
    // (issue 13: a long transfer through a draining ztunnel stalled). Such a session ends
    // when its streams do, when its socket closes, or at the drain bound of its owner.
    if (pingDeadline || ended || session.closed) return;
    // Also how a session nghttp2 ended on its own is noticed (a header block it could not
    // decode, its rapid-reset limit): Node reports neither, and such a session answers nothing.
    pingDeadline = setTimeout(() => fail('ping_timeout', `no PING answer within ${l.pingTimeoutMs} ms (peer stopped reading or left, or the HTTP/2 layer ended the session)`), l.pingTimeoutMs);
    pingDeadline.unref();
    try {
      session.ping((err) => {
        clearTimeout(pingDeadline);
        pingDeadline = undefined;
        if (err && !ended && !session.destroyed && !session.closed) fail('ping_timeout', `PING failed: ${err.message}`);
      });
    } catch {
      // session already closing
    }
  }, l.pingIntervalMs);
  pinger.unref();

  armIdle();
  session.on('error', (e: Error) => {
    const kind = sessionErrorKind(e);
    if (kind) fail(kind, `HTTP/2 session ended: ${e.message}`);
    else end();
  });
  // What the session had processed before the peer left: trailing reset streams count too.
  session.socket?.once('end', () => countSkipped(session.state?.lastProcStreamID));
  session.once('close', end);

  return {
    admit(stream) {
      countSkipped((stream.id ?? 0) - 2);
      seen++;
      if (open >= l.maxConcurrentStreams) {
        refuse('stream_limit', `more than ${l.maxConcurrentStreams} concurrent streams on one connection`);
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return false;
      }
      open++;
      clearTimeout(idle);
      stream.once('close', () => {
        open--;
        if (open === 0 && !ended) armIdle();
      });
      return true;
    },
  };
}
