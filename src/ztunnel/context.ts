// What every ztunnel listener shares: the config, the workload store, mesh TLS, the HBONE
// pool, the upstream dialer, the log and the metrics (ztunnel's ProxyInputs).
import type { Logger } from 'pino';
import { WorkloadStore, workloadIdentity, type Workload } from '../mesh/workloads.js';
import type { MeshTls } from '../mesh/tls.js';
import { HbonePool } from '../mesh/pool.js';
import type { SpiffeId } from '../mesh/identity.js';
import { Metrics } from './metrics.js';
import { createDialer, origSrcMode, type Dialer } from './dialer.js';
import type { ZtunnelConfig } from './config.js';

export interface ZtunnelContext {
  cfg: ZtunnelConfig;
  store: WorkloadStore;
  tls: MeshTls;
  pool: HbonePool;
  dialer: Dialer;
  log: Logger;
  metrics: Metrics;
  /** Uniform [0,1) source for endpoint and waypoint choice (injectable for tests). */
  random: () => number;
  /** All listeners are up (/healthz/ready). */
  ready: boolean;
}

export interface ContextOptions {
  dialer?: Dialer;
  random?: () => number;
}

export function createContext(cfg: ZtunnelConfig, tls: MeshTls, log: Logger, opts: ContextOptions = {}): ZtunnelContext {
  const dialer = opts.dialer ?? createDialer(origSrcMode(cfg.enableOrigSrc), log);
  const pool = new HbonePool({
    tls,
    dial: (addr, srcIp) => dialer.connect(addr, srcIp).socket,
    idleTimeoutMs: cfg.poolIdleTimeoutMs ?? 60_000,
    onSessionEvent: (e) => log.debug({ pool: e.key, event: e.event, err: e.error?.message }, 'hbone session'),
  });
  return {
    cfg,
    store: new WorkloadStore({ workloads: cfg.workloads, services: cfg.services, policies: cfg.policies }),
    tls,
    pool,
    dialer,
    log,
    metrics: new Metrics(),
    random: opts.random ?? Math.random,
    ready: false,
  };
}

export const identityOf = (w: Workload): SpiffeId => workloadIdentity(w);

export const fmtAddr = (a: { ip: string; port: number }): string => (a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`);

/** Node reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d. */
export const plainIp = (ip: string | undefined): string => (ip ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
