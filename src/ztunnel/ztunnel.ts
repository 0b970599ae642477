// One ztunnel: builds the shared context and starts every listener. main.ts is the process
// wrapper; tests start this in-process.
import net from 'node:net';
import type http from 'node:http';
import type { Logger } from 'pino';
import { transparentListenFd } from '../host/sys.js';
import { loadLabCa } from '../mesh/ca.js';
import { keyLogFromEnv } from '../mesh/keylog.js';
import { meshTlsFromCa } from '../mesh/tls.js';
import { workloadIdentity } from '../mesh/workloads.js';
import { portsOf, type ZtunnelConfig, type ZtunnelPorts } from './config.js';
import { createContext, type ContextOptions, type ZtunnelContext } from './context.js';
import { handleOutbound } from './outbound.js';
import { createInbound } from './inbound.js';
import { handleInboundPassthrough } from './inbound-passthrough.js';
import { adminServer, readinessServer, statsServer } from './admin.js';
import { startDns, type DnsServer } from './dns.js';

export type RunningPorts = Omit<ZtunnelPorts, 'dns'> & { dns?: number };

export interface RunningZtunnel {
  ctx: ZtunnelContext;
  /** Actual ports (differ from the config when it asked for 0); dns only when DNS capture is on. */
  ports: RunningPorts;
  close(): Promise<void>;
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

export async function startZtunnel(cfg: ZtunnelConfig, log: Logger, opts: ContextOptions = {}): Promise<RunningZtunnel> {
  const ca = await loadLabCa(cfg.caDir);
  const keyLog = keyLogFromEnv(cfg.keyLogFile);
  const tls = meshTlsFromCa(ca, keyLog);
  const z = createContext(cfg, tls, log, opts);
  const want = portsOf(cfg);
  const host = cfg.listen?.host ?? '0.0.0.0';

  // Sign this node's workload certs up front: the first connection should not pay for it.
  await Promise.all(cfg.workloads.filter((w) => w.node === cfg.node && w.protocol === 'HBONE').map((w) => tls.certFor(workloadIdentity(w))));

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
      dns = await startDns(z, host, want.dns);
      ports.dns = dns.port;
    }
    z.ready = true;
    log.info({ instanceIp: cfg.instanceIp, ports, origSrc: z.dialer.mode, keyLog: keyLog?.file }, 'ztunnel ready');
    return {
      ctx: z,
      ports,
      async close() {
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
    for (const s of servers) s.close();
    await dns?.close();
    z.pool.close();
    throw e;
  }
}
