// What every listener of a proxy gets (ztunnel's ProxyInputs): the proxy's config, the
// control plane's view, mesh TLS with its issued certificates, the HBONE pool, the upstream
// dialer, the log, the metrics and the random source. One per proxy process, shared by its
// listeners; a config reload swaps `cfg` and the control plane's snapshot in place.
import type { Logger } from 'pino';
import type { MeshTls } from '../mesh/tls.js';
import { HbonePool } from '../mesh/pool.js';
import { Metrics } from './metrics.js';
import { createDialer, origSrcMode, type Dialer } from './dialer.js';
import { meshStateOf, type ProxyConfig } from './config.js';
import { ControlPlane } from './control-plane.js';
import type { ProxyKind } from './outbound-request.js';

export interface ProxyInputs<C extends ProxyConfig = ProxyConfig> {
  kind: ProxyKind;
  cfg: C;
  /** Workloads, Services, policies: take `xds.snapshot` once per connection. */
  xds: ControlPlane;
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

export interface InputsOptions {
  dialer?: Dialer;
  random?: () => number;
  /** Content hash of the config the proxy starts with (config_dump shows it). */
  configHash?: string;
}

export function createProxyInputs<C extends ProxyConfig>(kind: ProxyKind, cfg: C, tls: MeshTls, log: Logger, opts: InputsOptions = {}): ProxyInputs<C> {
  const dialer = opts.dialer ?? createDialer(origSrcMode(cfg.enableOrigSrc), log);
  const pool = new HbonePool({
    tls,
    dial: (addr, srcIp) => dialer.connect(addr, srcIp).socket,
    idleTimeoutMs: cfg.poolIdleTimeoutMs ?? 60_000,
    onSessionEvent: (e) => log.debug({ pool: e.key, event: e.event, err: e.error?.message }, 'hbone session'),
  });
  return {
    kind,
    cfg,
    xds: new ControlPlane(meshStateOf(cfg), opts.configHash),
    tls,
    pool,
    dialer,
    log,
    metrics: new Metrics(),
    random: opts.random ?? Math.random,
    ready: false,
  };
}

export const fmtAddr = (a: { ip: string; port: number }): string => (a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`);

/** Node reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d. */
export const plainIp = (ip: string | undefined): string => (ip ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
