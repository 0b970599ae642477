// The upstream side of the engine: one undici Pool per endpoint, whose connections come from
// the caller's connect() (an HBONE CONNECT stream for the waypoint, a TCP socket for the
// sidecar). undici speaks HTTP/1.1 over any Duplex its `connect` option hands back, so the
// engine gets keep-alive pooling, request/response streaming and abort signals without
// knowing what carries the bytes. (Node's http.request with createConnection would also take
// a Duplex, but gives no pooling across requests over caller-made streams.)
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type { Pool } from 'undici';
import { endpointKey, type L7Endpoint } from './backends.js';

// undici holds some 13 MB once loaded (its modules and its llhttp WebAssembly): a waypoint or
// sidecar that never forwards an HTTP request never pays for it. Required (synchronously, once)
// when the first pool is made, i.e. by the first request forwarded.
let undici: typeof import('undici') | undefined;
const loadUndici = (): typeof import('undici') => (undici ??= createRequire(import.meta.url)('undici') as typeof import('undici'));

export type ConnectFn = (endpoint: L7Endpoint) => Promise<Duplex>;

/** connect() failed or took longer than the connect timeout (Envoy reset reason "connection failure"). */
export class UpstreamConnectError extends Error {
  readonly code = 'L7_UPSTREAM_CONNECT';
  constructor(readonly endpoint: string, cause: unknown) {
    super(`connect to ${endpoint} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'UpstreamConnectError';
  }
}

/** Envoy's cluster connect_timeout default (meshConfig.connectTimeout); HBONE's connect_originate uses 2 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** How long an idle upstream connection is kept for reuse. */
const KEEP_ALIVE_MS = 4_000;

function withTimeout<T>(p: Promise<T>, ms: number, onLate: (v: T) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`no connection after ${ms} ms`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        if (done) onLate(v);
        else resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        if (!done) reject(e);
      },
    );
  });
}

export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  /** The latest endpoint object per key: its meta may change with config while the pool lives. */
  private readonly latest = new Map<string, L7Endpoint>();

  constructor(private readonly connect: ConnectFn, private readonly connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS) {}

  pool(endpoint: L7Endpoint): Pool {
    const key = endpointKey(endpoint);
    this.latest.set(key, endpoint);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new (loadUndici().Pool)(`http://${key}`, {
        connect: (_opts, cb) => {
          const ep = this.latest.get(key) ?? endpoint;
          withTimeout(this.connect(ep), this.connectTimeoutMs, (late) => late.destroy()).then(
            (stream) => cb(null, stream as never),
            (err) => cb(new UpstreamConnectError(key, err), null),
          );
        },
        // The engine runs its own route and per-try timers; Istio disables the idle timeouts.
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: KEEP_ALIVE_MS,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
