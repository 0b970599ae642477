// HTTP/1.1 and h2c served over connections a proxy already accepted and decided about (an
// HBONE CONNECT tunnel, a TLS-terminated or plain TCP socket): one Node HTTP server and one
// HTTP/2 server, fed those connections instead of listening themselves, each tagged with what
// its listener knew about it (peer, identity, destination). On a connection that is already a
// JS stream (an HBONE tunnel), one opening with the HTTP/2 client preface (prior knowledge, as
// `curl --http2-prior-knowledge` sends) goes to the HTTP/2 one, anything else to HTTP/1.1, as
// Envoy's HCM with codec_type AUTO decides; a native socket is HTTP/1.1 (see serve()). Every
// request goes through the L7 engine; the caller gets its result and the connection's info to
// log it and count it.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { peekFirstChunk } from '../sidecar-proxy/istio-mtls.js';
import type { Logger } from 'pino';
import type { DownstreamInfo, L7Engine } from '../l7/engine.js';
import type { L7RequestResult } from '../l7/result.js';
import type { RefusalCounter } from './refusals.js';

/** What the HTTP/1.1 side bounds (Envoy's HTTP connection manager limits, as Istio keeps them). */
export interface Http1Limits {
  /** Request line plus headers, bytes: 431 past it. Envoy's max_request_headers_kb default, 60 KiB. */
  maxHeaderSize: number;
  /** Header fields per request: 431 past it. Envoy's max_headers_count default, 100. */
  maxHeadersCount: number;
  /**
   * From a request's first byte to the end of its headers (slowloris): 408 past it. Envoy's
   * request_headers_timeout is off by default; the lab uses Node's default, 60 s, so a
   * client trickling headers cannot hold a connection forever.
   */
  headersTimeoutMs: number;
  /**
   * From a request's first byte to the end of its body: 408 past it. Node's default, 300 s,
   * as long as Envoy's stream_idle_timeout (5 min); an upload slower than that is cut.
   */
  requestTimeoutMs: number;
  /** How often Node looks for requests past those timeouts (its default is 30 s). */
  timeoutCheckMs: number;
}

export const HTTP1_LIMITS: Http1Limits = {
  maxHeaderSize: 60 * 1024,
  maxHeadersCount: 100,
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  timeoutCheckMs: 1000,
};

/** The first bytes an HTTP/2 client with prior knowledge sends (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Whether a connection's first chunk opens HTTP/2. A chunk shorter than the preface counts when
 * it is a start of it: no HTTP/1.1 request starts with "PRI * HTTP/2.0" (llhttp refuses it).
 */
export function looksLikeH2c(first: Buffer): boolean {
  const n = Math.min(first.length, H2_PREFACE.length);
  return n > 0 && first.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
}

export interface L7ServerOptions {
  limits?: Partial<Http1Limits>;
  /** Counts each refused request under lab_refused_total{listener="http"}. */
  refusals?: RefusalCounter;
}

/** llhttp's verdicts that mean two parsers could disagree on where the request ends. */
const SMUGGLING = new Set(['HPE_UNEXPECTED_CONTENT_LENGTH', 'HPE_INVALID_CONTENT_LENGTH', 'HPE_INVALID_TRANSFER_ENCODING']);

/** The status and reason label for a request Node's parser or timers refused; undefined for a socket error. */
function clientErrorVerdict(code: string): { status: number; kind: string } | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, kind: 'header_size' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, kind: 'request_timeout' };
  if (SMUGGLING.has(code)) return { status: 400, kind: 'smuggling' };
  if (code.startsWith('HPE_')) return { status: 400, kind: 'malformed' };
  return undefined;
}

export interface L7Server {
  /** Serve HTTP on `conn` (a net.Socket, or a Duplex without a native handle: see mesh/duplex-adapter.ts). */
  serve(conn: Duplex, info: DownstreamInfo): void;
  /** Destroys every connection being served. */
  close(): Promise<void>;
}

export function createL7Server(
  engine: L7Engine,
  log: Logger,
  onResult: (r: L7RequestResult, info: DownstreamInfo) => void,
  opts: L7ServerOptions = {},
): L7Server {
  const limits: Http1Limits = { ...HTTP1_LIMITS, ...opts.limits };
  const infos = new WeakMap<object, DownstreamInfo>();
  const live = new Set<Duplex>();
  // Each refused request: one log line, one count, then the connection is closed.
  const refused = (kind: string, status: number, detail: string, info: DownstreamInfo | undefined): void => {
    opts.refusals?.inc('http', kind);
    log.warn({ reason: kind, status, detail, 'src.addr': info?.srcIp, 'dst.port': info?.dstPort }, 'request refused');
  };
  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderSize,
    // Never the lenient parser: it accepts what a backend may parse differently (smuggling).
    insecureHTTPParser: false,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckMs,
  }, (req, res) => {
    const info = infos.get(req.socket);
    if (!info) { res.writeHead(500).end(); return; }
    // Node keeps the first maxHeadersCount fields and drops the rest silently; one more than
    // the limit is kept so that a request over it can be seen, and refused as Envoy does.
    if (req.rawHeaders.length / 2 > limits.maxHeadersCount) {
      refused('header_count', 431, `more than ${limits.maxHeadersCount} header fields`, info);
      res.writeHead(431, { connection: 'close' }).end();
      return;
    }
    void engine.handle(req, res, info).then((r) => onResult(r, info), (e: Error) => log.error({ err: e.message }, 'request failed in the L7 engine'));
  });
  server.maxHeadersCount = limits.maxHeadersCount + 1;
  // Envoy's HCM idle timeout between requests stays off, as in Istio (waypoint-and-sidecar.md §3).
  server.keepAliveTimeout = 0;
  // A client that half-closes after its request (shutdown(SHUT_WR), or an HBONE END_STREAM)
  // still gets its response, as from Envoy; Node's default would end our side at once.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // Node checks headersTimeout/requestTimeout only for a server that emitted 'listening';
  // this one is fed connections and never listens, so it says it does.
  server.emit('listening');
  // Bytes still arriving after the refusal make the parser fail again: one refusal per connection.
  const refusedConns = new WeakSet<Duplex>();
  server.on('clientError', (e: NodeJS.ErrnoException, sock: Duplex & { _httpMessage?: http.ServerResponse }) => {
    const verdict = clientErrorVerdict(e.code ?? '');
    if (!verdict || refusedConns.has(sock)) { sock.destroy(); return; }
    refusedConns.add(sock);
    refused(verdict.kind, verdict.status, `${e.code}: ${e.message}`, infos.get(sock));
    // As Node's own handler: answer unless a response is already under way, then close.
    if (sock.writable && !sock._httpMessage?.headersSent) {
      sock.end(`HTTP/1.1 ${verdict.status} ${http.STATUS_CODES[verdict.status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`, () => sock.destroy());
    } else {
      sock.destroy();
    }
  });

  // h2c: the same engine behind Node's HTTP/2 compatibility API. The upstream stays HTTP/1.1
  // (undici) whatever the client spoke: Envoy would speak h2 to an app port named http2/grpc.
  const h2 = http2.createServer({
    // The HTTP/1 bounds, in HTTP/2 terms: the decoded header list (HPACK-expanded), and one
    // field more than maxHeadersCount, plus the four request pseudo-headers Node counts too, so
    // that a request just over it reaches the check below (past that, Node resets the stream).
    maxHeaderListSize: limits.maxHeaderSize,
    maxHeaderListPairs: limits.maxHeadersCount + 1 + 4,
  } as http2.ServerOptions, (req, res) => {
    const info = infos.get(req.stream.session as object);
    if (!info) { res.writeHead(500).end(); return; }
    // Pseudo-headers (:method, :path, ...) are not fields a client chose: not counted.
    const fields = req.rawHeaders.filter((_, i) => i % 2 === 0 && !req.rawHeaders[i].startsWith(':')).length;
    if (fields > limits.maxHeadersCount) {
      refused('header_count', 431, `more than ${limits.maxHeadersCount} header fields`, info);
      res.writeHead(431).end();
      return;
    }
    // The engine is written against the HTTP/1 types; the compat API offers the same surface it uses.
    void engine.handle(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse, info)
      .then((r) => onResult(r, info), (e: Error) => log.error({ err: e.message }, 'request failed in the L7 engine'));
  });
  // 'session' fires synchronously inside emit('connection'): the info waiting is this connection's.
  let h2Pending: DownstreamInfo | undefined;
  h2.on('session', (session: http2.ServerHttp2Session) => {
    if (h2Pending) infos.set(session, h2Pending);
  });
  // A client that breaks the protocol gets Node's GOAWAY/RST_STREAM; Node's refusals of oversized
  // header lists happen in nghttp2 and never reach here, so only the 431 above is counted.
  h2.on('sessionError', (e: Error) => log.debug({ err: e.message }, 'h2c session error'));

  const track = (conn: Duplex, info: DownstreamInfo): void => {
    infos.set(conn, info);
    live.add(conn);
    conn.once('close', () => live.delete(conn));
  };
  const dispatch = (conn: Duplex, first: Buffer, info: DownstreamInfo): void => {
    track(conn, info);
    if (looksLikeH2c(first)) {
      h2Pending = info;
      h2.emit('connection', conn);
      h2Pending = undefined;
    } else {
      server.emit('connection', conn);
    }
    // The peek left the stream paused, and a 'data' listener does not resume a stream paused
    // on purpose: both servers would wait forever on a JS Duplex.
    conn.resume();
  };

  return {
    serve(conn, info) {
      // A socket with a native handle (the sidecar's REDIRECTed 15001/15006 connections, an
      // Istio mTLS TLSSocket) stays on Node's native HTTP/1.1 path: to tell h2c apart, its
      // first bytes would have to be read in JS and every later byte too (the parser would
      // otherwise read the handle past the bytes put back), which cost the sidecar's HTTP/1.1
      // path 20-35% more CPU per request in an A/B of the compare bench. h2c is served
      // where the connection already is a JS stream: HBONE tunnels (the waypoint, a sidecar's 15008).
      if (conn instanceof net.Socket) {
        track(conn, info);
        server.emit('connection', conn);
        return;
      }
      // The first bytes decide HTTP/1.1 or HTTP/2; peekFirstChunk puts them back (it uses only
      // the Readable side, so any Duplex does).
      void peekFirstChunk(conn as net.Socket).then((first) => {
        if (first === null) { conn.destroy(); return; }
        dispatch(conn, first, info);
      });
    },
    async close() {
      // Stops the timeout checker; the callback takes the "not running" error of a server that never listened.
      server.close(() => undefined);
      h2.close();
      for (const c of live) c.destroy();
      live.clear();
    },
  };
}
