// The upstream side of the engine: one undici Pool per endpoint, whose connections come from
// the caller's connect() (an HBONE CONNECT stream for the waypoint, a TCP socket for the
// sidecar). undici speaks HTTP/1.1 over any Duplex its `connect` option hands back, so the
// engine gets keep-alive pooling, request/response streaming and abort signals without
// knowing what carries the bytes. (Node's http.request with createConnection would also take
// a Duplex, but gives no pooling across requests over caller-made streams.)
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type { Pool } from 'undici';
import { gracefulClose } from './graceful-close.js';
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

/**
 * Bounds on the engine's upstream HTTP/1.1 connections, per endpoint (one undici Pool each).
 * Each connection is one HBONE stream at a waypoint, and so one TCP connection from the
 * destination's ztunnel to the pod (a sidecar: one TCP connection of its own): without a bound,
 * a burst of N client connections left N of each open, and without a short idle timeout they
 * stayed until the next traffic.
 */
export interface UpstreamLimits {
  /**
   * Connections per endpoint at most; requests past it wait in the pool's queue for a free one
   * (Envoy queues them too, up to max_pending_requests). Envoy's circuit-breaker default is
   * 1024 per cluster, and Istio raises it (and max_pending_requests) to 2^32-1 unless a
   * DestinationRule's connectionPool sets them; the lab bounds it at one HBONE session's worth
   * of streams (POOL_MAX_STREAMS, 100) per endpoint: a 1,000-connection burst through a
   * waypoint costs the destination's ztunnel 100 sockets, not 1,000, and HTTP/1.1 requests
   * to one pod on this host are not faster with more in flight.
   */
  maxConnectionsPerEndpoint: number;
  /**
   * An idle connection is closed after this long. Envoy's upstream HTTP idle_timeout (and
   * Istio's connectionPool.http.idleTimeout) is 1 h and ignores the server's Keep-Alive hint;
   * the lab keeps 10 s, also as the cap on a server's `Keep-Alive: timeout=` hint, which undici
   * would otherwise follow up to 10 min (httpbin says 65 s). A shorter hint still wins, less
   * undici's 2 s margin, so the server never closes a connection we are about to reuse.
   */
  idleTimeoutMs: number;
}

export const DEFAULT_UPSTREAM_LIMITS: Readonly<UpstreamLimits> = { maxConnectionsPerEndpoint: 100, idleTimeoutMs: 10_000 };

/** Upstream connections of all endpoints: open ones, and requests waiting for one. */
export interface UpstreamStats {
  endpoints: number;
  connected: number;
  /** Open and not carrying a request. */
  free: number;
  /** Requests waiting for a connection (the bound reached). */
  queued: number;
}

/**
 * One endpoint's pool, counted as Envoy's per-cluster gauges count a cluster's pool
 * (cluster_manager cluster statistics): the numbers behind `envoy_cluster_upstream_*_active`.
 */
export interface EndpointUpstreamStats {
  /** ip:port (endpointKey). */
  endpoint: string;
  /** upstream_cx_active: connections open, busy or idle. */
  cxActive: number;
  /** upstream_rq_active: requests on a connection (sent, response not yet complete); Envoy counts a request here only once it has one. */
  rqActive: number;
  /**
   * upstream_rq_pending_active: requests waiting for a connection, because the per-endpoint
   * bound is reached (the pool's queue) or because theirs is still being connected.
   */
  rqPendingActive: number;
}

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

  private readonly limits: UpstreamLimits;

  constructor(private readonly connect: ConnectFn, private readonly connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, limits: Partial<UpstreamLimits> = {}) {
    this.limits = { ...DEFAULT_UPSTREAM_LIMITS, ...limits };
  }

  pool(endpoint: L7Endpoint): Pool {
    const key = endpointKey(endpoint);
    this.latest.set(key, endpoint);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new (loadUndici().Pool)(`http://${key}`, {
        connect: (_opts, cb) => {
          const ep = this.latest.get(key) ?? endpoint;
          withTimeout(this.connect(ep), this.connectTimeoutMs, (late) => late.destroy()).then(
            // A TCP socket (sidecar) closes with a FIN already; an HTTP/2 stream would be reset.
            (stream) => cb(null, (stream instanceof Socket ? stream : gracefulClose(stream)) as never),
            (err) => cb(new UpstreamConnectError(key, err), null),
          );
        },
        // The engine runs its own route and per-try timers; Istio disables these two.
        headersTimeout: 0,
        bodyTimeout: 0,
        connections: this.limits.maxConnectionsPerEndpoint,
        keepAliveTimeout: this.limits.idleTimeoutMs,
        keepAliveMaxTimeout: this.limits.idleTimeoutMs,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  stats(): UpstreamStats {
    const out: UpstreamStats = { endpoints: this.pools.size, connected: 0, free: 0, queued: 0 };
    for (const p of this.pools.values()) {
      out.connected += p.stats.connected;
      out.free += p.stats.free;
      out.queued += p.stats.queued;
    }
    return out;
  }

  /**
   * Per endpoint, read from undici's counters when asked (a scrape, a config dump): nothing is
   * counted on the request path. undici's `pending` is its pool queue plus the requests handed
   * to a connection that is not yet up, which is what Envoy keeps pending.
   */
  byEndpoint(): EndpointUpstreamStats[] {
    return [...this.pools].map(([endpoint, p]) => {
      const s = p.stats;
      return { endpoint, cxActive: s.connected, rqActive: s.running, rqPendingActive: s.pending };
    });
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
