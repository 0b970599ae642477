// HTTP/1.1 served over connections a proxy already accepted and decided about (an HBONE
// CONNECT tunnel, a TLS-terminated or plain TCP socket): one Node HTTP server, fed those
// connections instead of listening itself, each tagged with what its listener knew about it
// (peer, identity, destination). Every request goes through the L7 engine; the caller gets its
// result and the connection's info to log it and count it.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { DownstreamInfo, L7Engine } from '../l7/engine.js';
import type { L7RequestResult } from '../l7/result.js';

export interface L7Server {
  /** Serve HTTP on `conn` (a net.Socket, or a Duplex without a native handle: see mesh/duplex-adapter.ts). */
  serve(conn: Duplex, info: DownstreamInfo): void;
  /** Destroys every connection being served. */
  close(): Promise<void>;
}

export function createL7Server(engine: L7Engine, log: Logger, onResult: (r: L7RequestResult, info: DownstreamInfo) => void): L7Server {
  const infos = new WeakMap<object, DownstreamInfo>();
  const live = new Set<Duplex>();
  const server = http.createServer((req, res) => {
    const info = infos.get(req.socket);
    if (!info) { res.writeHead(500).end(); return; }
    void engine.handle(req, res, info).then((r) => onResult(r, info), (e: Error) => log.error({ err: e.message }, 'request failed in the L7 engine'));
  });
  // Envoy's HCM idle timeouts are off in Istio (waypoint-and-sidecar.md §3): so are Node's.
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  // A client that half-closes after its request (shutdown(SHUT_WR), or an HBONE END_STREAM)
  // still gets its response, as from Envoy; Node's default would end our side at once.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('clientError', (_e, sock) => sock.destroy());
  return {
    serve(conn, info) {
      infos.set(conn, info);
      live.add(conn);
      conn.once('close', () => live.delete(conn));
      server.emit('connection', conn);
    },
    async close() {
      for (const c of live) c.destroy();
      live.clear();
    },
  };
}
