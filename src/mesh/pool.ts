// HBONE connection pooling (ztunnel proxy/pool.rs): a fresh TCP+TLS+CONNECT costs several
// round trips and a handshake, a new CONNECT stream on a live session one round trip. Sessions
// are keyed by (source identity, destination identity, destination address) as in ztunnel
// 1.20, plus the spoofed source IP: with original-source on, the session's TCP source is a
// particular client pod's IP, and the peer's RBAC sees that IP, so two pods of one service
// account must not share a session.
import type http2 from 'node:http2';
import type net from 'node:net';
import { formatSpiffe, type SpiffeId } from './identity.js';
import type { MeshTls } from './tls.js';
import type { Address } from './hbone-server.js';
import { formatAuthority, hboneConnect, openHboneSession, type ConnectHeaders } from './hbone-client.js';
import { idleDelay } from './idle-reaper.js';

export interface PoolKey {
  source: SpiffeId;
  expected: SpiffeId;
  address: Address;
  /** Source IP the session's TCP connection is bound to (spoofed); undefined = the proxy's own. */
  srcIp?: string;
}

export interface HbonePoolOptions {
  tls: MeshTls;
  /** Opens the TCP connection a new session runs on. */
  dial(address: Address, srcIp?: string): net.Socket;
  /** A session with no streams is closed after this long. */
  idleTimeoutMs?: number;
  /** The same for a session behind another live one of its key (idle-reaper.ts); default SURPLUS_IDLE_MS. */
  surplusIdleTimeoutMs?: number;
  onSessionEvent?(e: { event: 'open' | 'close' | 'idle' | 'goaway' | 'error' | 'stale'; key: string; error?: Error }): void;
  /**
   * How long a CONNECT on a reused session may wait for its response. A peer that vanished
   * without a FIN or RST (its namespace deleted) leaves a session that looks alive; past this,
   * the session is dropped and the CONNECT retried once on a fresh one.
   */
  reusedConnectTimeoutMs?: number;
}

export interface PoolStats {
  /** New sessions (each one a TCP connect + TLS handshake). */
  sessionsOpened: number;
  /** CONNECTs sent on an already-open session. */
  reused: number;
  streams: number;
}

interface Entry {
  key: string;
  ready?: http2.ClientHttp2Session;
  pending?: Promise<http2.ClientHttp2Session>;
  active: number;
  /** CONNECTs that picked this entry and wait for its session: they count against the limit too. */
  reserved: number;
  idle?: NodeJS.Timeout;
  dead: boolean;
  /** When its TCP connect started, until it completes (then undefined): see STALLED_DIAL_MS. */
  dialingSince?: number;
}

/**
 * A dial whose TCP handshake has not completed after this long is not shared with CONNECTs
 * that come later: they open a session of their own. A peer ztunnel that was restarting when
 * the SYN left drops it (TPROXY finds no listener) and the kernel sends it again only after
 * 1 s, then 3 s; without this, every request that arrives meanwhile waits for that resend
 * although the peer has been listening again for most of the second (issue 13: a killed
 * proxy serves again within 1 s). Surplus sessions this leaves are reaped when idle.
 */
export const STALLED_DIAL_MS = 200;

/** ztunnel config.rs DEFAULT_POOL_MAX_STREAMS_PER_CONNECTION; the HBONE server refuses stream 101 (hbone-limits.ts). */
export const POOL_MAX_STREAMS = 100;

export const poolKeyString = (k: PoolKey): string =>
  `${formatSpiffe(k.source)}|${formatSpiffe(k.expected)}|${formatAuthority(k.address)}|${k.srcIp ?? ''}`;

class StaleSessionError extends Error {
  override name = 'StaleSessionError';
}

/**
 * The peer did not process the stream: REFUSED_STREAM, or a GOAWAY whose last stream id is
 * below ours (a proxy draining for a graceful restart). Such a CONNECT is safe to send again
 * on a new session (RFC 9113 §8.7).
 */
export function refusedUnprocessed(e: unknown): boolean {
  const err = e as { code?: string; message?: string } | undefined;
  return /REFUSED_STREAM|\(rst 7\)/.test(err?.message ?? '') || err?.code === 'ERR_HTTP2_GOAWAY_SESSION';
}

export class HbonePool {
  readonly stats: PoolStats = { sessionsOpened: 0, reused: 0, streams: 0 };
  private readonly entries = new Map<string, Entry[]>();
  private readonly idleTimeoutMs: number;
  private closed = false;

  constructor(private readonly opts: HbonePoolOptions) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  }

  /** Live sessions (pending or ready), over all keys. */
  get size(): number {
    let n = 0;
    for (const list of this.entries.values()) n += list.length;
    return n;
  }

  /** A CONNECT stream to `authority` over a pooled session for `key`; `reused` tells whether a session was reused. */
  async connect(key: PoolKey, authority: string, headers: ConnectHeaders = {}, retried = false): Promise<{ stream: http2.ClientHttp2Stream; reused: boolean }> {
    if (this.closed) throw new Error('HBONE pool is closed');
    const k = poolKeyString(key);
    let entry = this.pick(k);
    const reused = !!entry;
    if (!entry) entry = this.open(k, key);
    entry.reserved++;
    let session: http2.ClientHttp2Session;
    try {
      session = entry.ready ?? (await entry.pending!);
    } finally {
      entry.reserved--;
    }
    entry.active++;
    if (entry.idle) clearTimeout(entry.idle);
    entry.idle = undefined;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      entry.active--;
      if (entry.active === 0 && !entry.dead) this.armIdle(entry);
    };
    try {
      const stream = reused ? await this.connectOrStale(entry, session, authority, headers) : await hboneConnect(session, authority, headers);
      this.stats.streams++;
      if (reused) this.stats.reused++;
      stream.once('close', release);
      return { stream, reused };
    } catch (e) {
      release();
      if (e instanceof StaleSessionError) return this.connect(key, authority, headers, retried);
      if (!retried && refusedUnprocessed(e)) return this.connect(key, authority, headers, true);
      throw e;
    }
  }

  private connectOrStale(entry: Entry, session: http2.ClientHttp2Session, authority: string, headers: ConnectHeaders): Promise<http2.ClientHttp2Stream> {
    const ms = this.opts.reusedConnectTimeoutMs ?? 3000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Nothing came back on a session we thought alive: drop it, so the retry opens a new one.
        this.opts.onSessionEvent?.({ event: 'stale', key: entry.key });
        entry.dead = true;
        const l = this.entries.get(entry.key);
        if (l && l.includes(entry)) l.splice(l.indexOf(entry), 1);
        session.destroy();
        reject(new StaleSessionError());
      }, ms);
      hboneConnect(session, authority, headers).then((s) => { clearTimeout(timer); resolve(s); }, (e: Error) => {
        clearTimeout(timer);
        reject(entry.dead ? new StaleSessionError() : e);
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const list of this.entries.values()) {
      for (const e of list) {
        e.dead = true;
        if (e.idle) clearTimeout(e.idle);
        e.ready?.destroy();
        e.pending?.then((s) => s.destroy(), () => undefined);
      }
    }
    this.entries.clear();
  }

  private pick(k: string): Entry | undefined {
    for (const e of this.entries.get(k) ?? []) {
      if (e.dead) continue;
      const s = e.ready;
      if (s && (s.closed || s.destroyed)) continue;
      if (!s && e.dialingSince !== undefined && performance.now() - e.dialingSince > STALLED_DIAL_MS) continue;
      // At most 100 streams per session, as ztunnel's pool (POOL_MAX_STREAMS_PER_CONNECTION),
      // and under the peer's SETTINGS_MAX_CONCURRENT_STREAMS; past it, open another session.
      const max = Math.min(s?.remoteSettings.maxConcurrentStreams ?? POOL_MAX_STREAMS, POOL_MAX_STREAMS);
      if (e.active + e.reserved < max) return e;
    }
    return undefined;
  }

  private open(k: string, key: PoolKey): Entry {
    const entry: Entry = { key: k, active: 0, reserved: 0, dead: false };
    const list = this.entries.get(k) ?? [];
    list.push(entry);
    this.entries.set(k, list);
    this.stats.sessionsOpened++;
    const drop = (event: 'close' | 'goaway' | 'error', error?: Error): void => {
      if (!entry.dead) this.opts.onSessionEvent?.({ event, key: k, ...(error ? { error } : {}) });
      entry.dead = true;
      if (entry.idle) clearTimeout(entry.idle);
      const l = this.entries.get(k);
      if (l) {
        const i = l.indexOf(entry);
        if (i >= 0) l.splice(i, 1);
        if (l.length === 0) this.entries.delete(k);
      }
    };
    entry.pending = (async () => {
      const socket = this.opts.dial(key.address, key.srcIp);
      entry.dialingSince = performance.now();
      socket.once('connect', () => { entry.dialingSince = undefined; });
      socket.setNoDelay(true);
      const session = await openHboneSession({ tls: this.opts.tls, socket, source: key.source, expected: key.expected });
      session.once('close', () => drop('close'));
      // The peer ended its side (a proxy shutting down): no new stream can use this session.
      // Its open streams finish (or fail) on their own: see finishOnPeerEnd in hbone-client.ts.
      socket.once('end', () => drop('close'));
      session.once('goaway', () => drop('goaway'));
      session.once('error', (e: Error) => drop('error', e));
      entry.ready = session;
      if (entry.dead) session.destroy();
      else this.opts.onSessionEvent?.({ event: 'open', key: k });
      return session;
    })();
    entry.pending.catch((e: Error) => drop('error', e));
    return entry;
  }

  private armIdle(entry: Entry): void {
    entry.idle = setTimeout(() => {
      if (entry.active > 0 || entry.dead) return;
      this.opts.onSessionEvent?.({ event: 'idle', key: entry.key });
      entry.dead = true;
      entry.ready?.close();
    }, idleDelay(entry, this.entries.get(entry.key) ?? [], this.idleTimeoutMs, this.opts.surplusIdleTimeoutMs));
    entry.idle.unref();
  }
}
