// An httpbin.org look-alike for the lab's pods. `/ip` reports the TCP peer the server saw
// (never a header): that is how the lab proves the mesh preserves source addresses.
import { listen } from './app-cli.js';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { randomFillSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { plainAddress } from './app-cli.js';

export interface HttpbinOptions {
  port: number;
  host?: string;
  /** Pod name, served by `/hostname`. */
  name?: string;
  log?: Logger;
}

export interface RunningApp {
  port: number;
  close(): Promise<void>;
}

const MAX_DELAY_S = 60;
// Generated once: /bytes/ streams slices of it, so throughput is bounded by the socket,
// not by producing content.
const CHUNK = randomFillSync(Buffer.allocUnsafe(1 << 20));

export async function startHttpbin(opts: HttpbinOptions): Promise<RunningApp> {
  const name = opts.name ?? 'httpbin';
  const server = createServer((req, res) => handle(req, res, name, opts.log));
  // Longer than the usual client/proxy idle timeouts, so the client side closes first and
  // never races a server-side close on a reused connection.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await listen(server, opts.port, opts.host ?? '0.0.0.0');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive peers would otherwise hold close() open for 65 s.
        server.closeAllConnections();
      }),
  };
}


interface Reply {
  bodyBytes: number;
}

function handle(req: IncomingMessage, res: ServerResponse, name: string, log?: Logger): void {
  const started = process.hrtime.bigint();
  const remote = plainAddress(req.socket.remoteAddress);
  const remotePort = req.socket.remotePort;
  const reply: Reply = { bodyBytes: 0 };
  res.on('close', () => {
    log?.info(
      {
        method: req.method,
        path: req.url,
        remote,
        remotePort,
        status: res.statusCode,
        bytes: reply.bodyBytes,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      'request',
    );
  });
  try {
    route(req, res, name, remote, reply);
  } catch (err) {
    log?.error({ err }, 'handler failed');
    if (!res.headersSent) json(res, reply, 500, { error: 'internal error' });
    else res.destroy();
  }
}

function route(req: IncomingMessage, res: ServerResponse, name: string, remote: string, reply: Reply): void {
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const path = url.pathname;
  let m: RegExpExecArray | null;
  if (path === '/') return index(res, reply);
  if (path === '/ip') return json(res, reply, 200, { origin: remote });
  if (path === '/headers') return json(res, reply, 200, { headers: headerObject(req) });
  if (path === '/hostname') return text(res, reply, 200, `${name}\n`);
  if (path === '/get') return json(res, reply, 200, getBody(req, url, remote));
  if ((m = /^\/status\/([^/]+)$/.exec(path))) {
    const code = /^\d{3}$/.test(m[1]) ? Number(m[1]) : NaN;
    if (!(code >= 200 && code <= 599)) return json(res, reply, 400, { error: `invalid status code "${m[1]}" (200-599)` });
    // 204 and 304 must not carry a Content-Length (RFC 9110 8.6).
    res.writeHead(code, code === 204 || code === 304 ? {} : { 'content-length': '0' });
    res.end();
    return;
  }
  if ((m = /^\/delay\/([^/]+)$/.exec(path))) {
    const s = /^\d+(\.\d+)?$/.test(m[1]) ? Number(m[1]) : NaN;
    if (Number.isNaN(s)) return json(res, reply, 400, { error: `invalid delay "${m[1]}" (seconds, 0-${MAX_DELAY_S})` });
    const body = getBody(req, url, remote);
    const timer = setTimeout(() => json(res, reply, 200, body), Math.min(s, MAX_DELAY_S) * 1000);
    res.on('close', () => clearTimeout(timer));
    return;
  }
  if ((m = /^\/bytes\/([^/]+)$/.exec(path))) {
    const n = /^\d+$/.test(m[1]) ? Number(m[1]) : NaN;
    if (!Number.isSafeInteger(n)) return json(res, reply, 400, { error: `invalid byte count "${m[1]}"` });
    return streamBytes(req, res, n, reply);
  }
  json(res, reply, 404, { error: 'not found', path });
}

/** Writes exactly `total` bytes, one slice of CHUNK per 'drain', until done or the peer leaves. */
function streamBytes(req: IncomingMessage, res: ServerResponse, total: number, reply: Reply): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let left = total;
  let gone = false;
  res.on('close', () => {
    gone = true;
  });
  const pump = (): void => {
    while (left > 0 && !gone) {
      const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      reply.bodyBytes += piece.length;
      if (!res.write(piece)) {
        if (left > 0) res.once('drain', pump);
        break;
      }
    }
    if (left === 0 && !gone) res.end();
  };
  pump();
}

function index(res: ServerResponse, reply: Reply): void {
  json(res, reply, 200, {
    app: 'httpbin (ambient-lab)',
    endpoints: ['/ip', '/headers', '/get', '/status/{code}', '/delay/{seconds}', '/bytes/{n}', '/hostname'],
  });
}

function getBody(req: IncomingMessage, url: URL, remote: string): Record<string, unknown> {
  const args: Record<string, string | string[]> = {};
  for (const k of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(k);
    args[k] = all.length === 1 ? all[0] : all;
  }
  return {
    args,
    headers: headerObject(req),
    origin: remote,
    url: `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`,
  };
}

/** Headers in httpbin's Title-Case; repeated ones joined with "," as HTTP allows. */
function headerObject(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i].toLowerCase().split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('-');
    out[key] = key in out ? `${out[key]},${raw[i + 1]}` : raw[i + 1];
  }
  return out;
}

function json(res: ServerResponse, reply: Reply, status: number, body: unknown): void {
  send(res, reply, status, 'application/json', JSON.stringify(body, null, 2) + '\n');
}

function text(res: ServerResponse, reply: Reply, status: number, body: string): void {
  send(res, reply, status, 'text/plain; charset=utf-8', body);
}

function send(res: ServerResponse, reply: Reply, status: number, type: string, body: string): void {
  const buf = Buffer.from(body);
  reply.bodyBytes = buf.length;
  res.writeHead(status, { 'content-type': type, 'content-length': String(buf.length) });
  res.end(buf);
}
