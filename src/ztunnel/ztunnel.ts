// One ztunnel: builds the proxy inputs (proxy/inputs.ts) as a shared node proxy and starts
// every listener. main.ts is the process wrapper; tests start this in-process.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type { Logger } from 'pino';
import { transparentListenFd } from '../host/sys.js';
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

export type RunningPorts = Omit<ZtunnelPorts, 'dns'> & { dns?: number };

export interface RunningZtunnel {
  ctx: ZtunnelInputs;
  /** Actual ports (differ from the config when it asked for 0); dns only when DNS capture is on. */
  ports: RunningPorts;
  /** Re-reads the config file and the certificates (SIGHUP); needs opts.configFile. */
  reload(trigger?: ReloadTrigger): ReloadResult;
  close(): Promise<void>;
}

export interface StartOptions extends InputsOptions {
  /** The file `cfg` came from: reloaded when it changes and on reload(). */
  configFile?: string;
}

function listenFd(server: net.Server, fd: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function listenTcp(server: net.Server | http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
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
    ports.outbound = await listenFd(outboundSrv, transparentListenFd({ host, port: want.outbound }));
    servers.push(outboundSrv);
    ports.inboundPlaintext = await listenFd(passthroughSrv, transparentListenFd({ host, port: want.inboundPlaintext }));
    servers.push(passthroughSrv);
    ports.inbound = await listenFd(inboundSrv, transparentListenFd({ host, port: want.inbound }));
    servers.push(inboundSrv);
    ports.admin = await listenTcp(admin, '127.0.0.1', want.admin);
    servers.push(admin);
    ports.stats = await listenTcp(stats, host, want.stats);
    servers.push(stats);
    ports.readiness = await listenTcp(readiness, host, want.readiness);
    servers.push(readiness);
    if (cfg.dnsCapture) {
      // Loaded only with DNS capture: its DNS library is ~5 MB of RSS an idle ztunnel without it never needs.
      const { startDns } = await import('./dns.js');
      dns = await startDns(z, host, want.dns);
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
