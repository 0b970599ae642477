// One ztunnel: builds the proxy inputs (proxy/inputs.ts) as a shared node proxy and starts
// every listener. main.ts is the process wrapper; tests start this in-process.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type { Logger } from 'pino';
import { tcpListenFd } from '../host/sys.js';
import { meshTlsFromCertDir } from '../mesh/cert-dir.js';
import { keyLogFromEnv } from '../mesh/keylog.js';
import { contentHash } from '../proxy/control-plane.js';
import { createProxyInputs, type InputsOptions } from '../proxy/inputs.js';
import { createReloader, type Reloader, type ReloadResult, type ReloadTrigger } from '../proxy/reload.js';
import { portsOf, type ZtunnelConfig, type ZtunnelInputs, type ZtunnelPorts } from './config.js';
import { handleOutbound } from './outbound.js';
import { createInbound } from './inbound.js';
import { handleInboundPassthrough } from './inbound-passthrough.js';
import { adminServer, readinessServer, statsServer } from './admin.js';
import type { DnsServer } from './dns.js';
import type { CaptureFds } from './early-listen.js';

export type RunningPorts = Omit<ZtunnelPorts, 'dns'> & { dns?: number };

export interface RunningZtunnel {
  ctx: ZtunnelInputs;
  /** Actual ports (differ from the config when it asked for 0); dns only when DNS capture is on. */
  ports: RunningPorts;
  /** Re-reads the config file and the certificates (SIGHUP); needs opts.configFile. */
  reload(trigger?: ReloadTrigger): ReloadResult;
  /**
   * Graceful restart, the old process's half: stop accepting (the successor, bound to the same
   * SO_REUSEPORT ports, takes every new connection), GOAWAY the HBONE sessions so peers open
   * new ones to the successor, and resolve once every open connection has ended on its own.
   * The bound on how long that may take is the caller's (the supervisor's drain timeout).
   */
  drain(): Promise<DrainReport>;
  close(): Promise<void>;
}

export interface DrainReport {
  /** Connections open on the capture listeners when accepting stopped. */
  open: { outbound: number; inboundPlaintext: number; inbound: number };
  durationMs: number;
}

export interface StartOptions extends InputsOptions {
  /** The file `cfg` came from: reloaded when it changes and on reload(). */
  configFile?: string;
  /** Capture listeners already bound and listening (early-listen.ts); else bound here. */
  captureFds?: CaptureFds;
}

/** Connections a server accepted that are still open. */
const connections = (s: net.Server): Promise<number> => new Promise((r) => s.getConnections((e, n) => r(e ? 0 : n)));

function listenFd(server: net.Server, fd: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

export async function startZtunnel(cfg: ZtunnelConfig, log: Logger, opts: StartOptions = {}): Promise<RunningZtunnel> {
  const keyLog = keyLogFromEnv(cfg.keyLogFile);
  // Only what the lab issued to this ztunnel: the trust root and its node's workloads' keys.
  const tls = meshTlsFromCertDir(cfg.certDir, keyLog);
  // The hash of the file as read, so a watch event echoing the same bytes is not a new version.
  const configHash = opts.configHash ?? (opts.configFile ? contentHash(readFileSync(opts.configFile)) : undefined);
  const z = createProxyInputs('ztunnel', cfg, tls, log, { ...opts, ...(configHash ? { configHash } : {}) });
  const want = portsOf(cfg);
  const host = cfg.listen?.host ?? '0.0.0.0';
  let reloader: Reloader | undefined;

  const servers: Array<net.Server | http.Server> = [];
  const inbound = createInbound(z);
  const outboundSrv = net.createServer({ allowHalfOpen: true }, (s) => void handleOutbound(z, s));
  const passthroughSrv = net.createServer({ allowHalfOpen: true }, (s) => void handleInboundPassthrough(z, s));
  const inboundSrv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => inbound.handle(s));
  const admin = adminServer(z);
  const stats = statsServer(z);
  const readiness = readinessServer(z);
  let dns: DnsServer | undefined;
  try {
    const { dns: _dns, ...rest } = want;
    const ports: RunningPorts = rest;
    // Capture listeners are IP_TRANSPARENT: they accept TPROXYed connections for any address.
    // Every listener is SO_REUSEPORT, so that a successor can bind the same ports while this
    // ztunnel still serves (lab ztunnel restart --graceful), as Istio's ztunnel does since 1.22.
    const listen = (h: string, port: number, transparent: boolean) => tcpListenFd({ host: h, port, transparent, reusePort: true });
    const early = opts.captureFds;
    ports.outbound = await listenFd(outboundSrv, early?.outbound ?? listen(host, want.outbound, true));
    servers.push(outboundSrv);
    ports.inboundPlaintext = await listenFd(passthroughSrv, early?.inboundPlaintext ?? listen(host, want.inboundPlaintext, true));
    servers.push(passthroughSrv);
    ports.inbound = await listenFd(inboundSrv, early?.inbound ?? listen(host, want.inbound, true));
    servers.push(inboundSrv);
    ports.admin = await listenFd(admin, listen('127.0.0.1', want.admin, false));
    servers.push(admin);
    ports.stats = await listenFd(stats, listen(host, want.stats, false));
    servers.push(stats);
    ports.readiness = await listenFd(readiness, listen(host, want.readiness, false));
    servers.push(readiness);
    if (cfg.dnsCapture) {
      // Loaded only with DNS capture: its DNS library is ~5 MB of RSS an idle ztunnel without it never needs.
      const { startDns } = await import('./dns.js');
      dns = await startDns(z, host, want.dns, undefined, { reusePort: true });
      ports.dns = dns.port;
    }
    if (opts.configFile) reloader = createReloader(z, opts.configFile, { reloadCerts: () => tls.reload() });
    z.ready = true;
    log.info({
      instanceIp: cfg.instanceIp, ports, origSrc: z.dialer.mode, keyLog: keyLog?.file,
      identities: tls.identities(), config: z.xds.version,
    }, 'ztunnel ready');
    return {
      ctx: z,
      ports,
      reload(trigger = 'api') {
        if (!reloader) throw new Error('this ztunnel was started without a config file to reload');
        return reloader.reload(trigger);
      },
      async drain() {
        const started = Date.now();
        reloader?.close();
        z.ready = false;
        const open = {
          outbound: await connections(outboundSrv), inboundPlaintext: await connections(passthroughSrv), inbound: await connections(inboundSrv),
        };
        // close() stops accepting at once and calls back when the last accepted connection has
        // ended; the side doors (admin, stats, readiness) do not wait for their keep-alive peers.
        const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
        for (const s of [admin, stats, readiness]) s.closeAllConnections();
        await dns?.close();
        dns = undefined;
        inbound.drain();
        z.log.info({ open }, 'draining: stopped accepting, waiting for open connections to end');
        await Promise.all(closed);
        await inbound.drained();
        z.pool.close();
        keyLog?.close();
        return { open, durationMs: Date.now() - started };
      },
      async close() {
        reloader?.close();
        z.ready = false;
        z.pool.close();
        inbound.close();
        await dns?.close();
        await Promise.all(servers.map((s) => new Promise<void>((r) => {
          s.close(() => r());
          (s as http.Server).closeAllConnections?.();
        })));
        keyLog?.close();
      },
    };
  } catch (e) {
    reloader?.close();
    for (const s of servers) s.close();
    await dns?.close();
    z.pool.close();
    throw e;
  }
}
