// What the four bookinfo services share: the headers the sample propagates from the request
// it serves to the requests it makes (so one trace and one x-request-id span the whole page, and
// `end-user` reaches reviews' waypoint for header matching), a small JSON/HTML reply helper, and
// the outbound GET with the sample's per-call timeout. Every call opens a new connection, as the
// sample's Python `requests.get` and Java JAX-RS client do: a pooled keep-alive connection would
// keep the path (and the L4 policy) it was opened with after the mesh configuration changed.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { listen, plainAddress } from '../app-cli.js';

/** Default port of every bookinfo service (the sample's containerPort and Service port). */
export const BOOKINFO_PORT = 9080;

/**
 * The headers productpage, details and reviews copy from the request they serve to the requests
 * they make (the lists in productpage.py, details.rb and LibertyRestEndpoint.java of Istio
 * 1.18-1.20): Envoy's x-request-id, the tracing formats Istio supports (Lightstep, Datadog, W3C,
 * Cloud Trace, gRPC, B3, SkyWalking), then the application's own: end-user (set by productpage from
 * the login), user-agent and the session headers.
 */
export const PROPAGATED_HEADERS = [
  'x-request-id',
  'x-ot-span-context',
  'x-datadog-trace-id', 'x-datadog-parent-id', 'x-datadog-sampling-priority',
  'traceparent', 'tracestate',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags',
  'sw8',
  'end-user',
  'user-agent',
  'cookie', 'authorization', 'jwt',
] as const;

/** The propagated headers present on `req`, lower-case names, first value of repeated ones. */
export function forwardHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED_HEADERS) {
    const v = req.headers[name];
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export interface Upstream {
  /** HTTP status, or undefined when no response came (refused, reset, timeout, DNS). */
  status?: number;
  body?: string;
  /** Why no response came. */
  error?: string;
}

/** GET `url` with `headers`, giving up after `timeoutMs` (the sample's client timeouts). */
export function get(url: string, headers: OutgoingHttpHeaders, timeoutMs: number): Promise<Upstream> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (u: Upstream): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(u);
    };
    // agent: false -> a fresh connection per call, closed after it (see the file comment).
    const req = httpRequest(url, { method: 'GET', headers: { accept: 'application/json', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish({ error: err.message }));
    });
    const timer = setTimeout(() => {
      finish({ error: `timed out after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => finish({ error: err.message }));
    req.end();
  });
}

/** Parses an upstream's 200 body as JSON; anything else is a failed call. */
export function jsonOf(u: Upstream): unknown | undefined {
  if (u.status !== 200 || u.body === undefined) return undefined;
  try {
    return JSON.parse(u.body);
  } catch {
    return undefined;
  }
}

export interface Reply {
  json(status: number, body: unknown, extra?: Record<string, string | string[]>): void;
  html(status: number, body: string, extra?: Record<string, string | string[]>): void;
  text(status: number, body: string, extra?: Record<string, string | string[]>): void;
  redirect(location: string, extra?: Record<string, string | string[]>): void;
}

function reply(res: ServerResponse): Reply {
  const send = (status: number, type: string, body: string, extra: Record<string, string | string[]> = {}): void => {
    const buf = Buffer.from(body);
    res.writeHead(status, { 'content-type': type, 'content-length': String(buf.length), ...extra });
    res.end(buf);
  };
  return {
    json: (status, body, extra) => send(status, 'application/json', JSON.stringify(body), extra),
    html: (status, body, extra) => send(status, 'text/html; charset=utf-8', body, extra),
    text: (status, body, extra) => send(status, 'text/plain; charset=utf-8', body, extra),
    redirect: (location, extra) => send(302, 'text/html; charset=utf-8', `<a href="${escapeHtml(location)}">${escapeHtml(location)}</a>\n`, { location, ...extra }),
  };
}

export type Handler = (req: IncomingMessage, url: URL, reply: Reply) => void | Promise<void>;

export interface BookinfoServerOptions {
  port: number;
  host?: string;
  log?: Logger;
}

export interface RunningApp {
  port: number;
  close(): Promise<void>;
}

/**
 * An HTTP server that logs one line per request (method, path, status, the x-request-id that ties
 * it to the calls it made, duration) and turns a handler's exception into a 500.
 */
export async function serveBookinfo(app: string, opts: BookinfoServerOptions, handler: Handler): Promise<RunningApp> {
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.on('close', () => {
      opts.log?.info({
        method: req.method, path: req.url, remote: plainAddress(req.socket.remoteAddress), status: res.statusCode,
        requestId: req.headers['x-request-id'], durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      }, 'request');
    });
    const url = new URL(req.url ?? '/', 'http://placeholder');
    Promise.resolve()
      .then(() => handler(req, url, reply(res)))
      .catch((err: unknown) => {
        opts.log?.error({ err, app }, 'handler failed');
        if (!res.headersSent) reply(res).json(500, { error: 'internal error' });
        else res.destroy();
      });
  });
  // Longer than the clients' idle timeouts, so the client closes a kept-alive connection first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await listen(server, opts.port, opts.host ?? '0.0.0.0');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The product id at the end of `/details/<id>` etc.: an integer, as the sample parses it, or undefined. */
export function productId(s: string): number | undefined {
  return /^-?\d+$/.test(s) ? Number(s) : undefined;
}
