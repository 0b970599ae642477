// One waypoint: the proxy core's inputs (as kind 'waypoint'), the HBONE listener on 15008, the
// L7 engine for HTTP ports, and the admin, stats and readiness side doors. main.ts is the
// process wrapper; tests can start this in-process.
import type http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { meshTlsFromCertDir } from '../mesh/cert-dir.js';
import { plainDuplex } from '../mesh/duplex-adapter.js';
import { keyLogFromEnv } from '../mesh/keylog.js';
import { principalOf } from '../mesh/identity.js';
import { ADMIN_PORT, HBONE_PORT, READINESS_PORT, STATS_PORT } from '../mesh/ports.js';
import { contentHash } from '../proxy/control-plane.js';
import { createProxyInputs, type InputsOptions, type ProxyInputs } from '../proxy/inputs.js';
import { createReloader, type Reloader, type ReloadResult, type ReloadTrigger } from '../proxy/reload.js';
import { RequestMetrics } from '../proxy/request-metrics.js';
import { L7Engine, type L7Config } from '../l7/engine.js';
import { createL7Server } from '../proxy/l7-server.js';
import { listenTcp } from '../proxy/listen.js';
import type { L7Endpoint } from '../l7/backends.js';
import type { WaypointConfig, WaypointPorts } from './config.js';
import { createWaypointInbound, dialEndpoint } from './inbound.js';
import { servedWorkloads } from './served.js';
import { requestLogFields, requestLabels } from './request-log.js';
import { waypointAdmin, waypointReadiness, waypointStats } from './admin.js';

export type WaypointInputs = ProxyInputs<WaypointConfig>;

export interface RunningWaypoint {
  z: WaypointInputs;
  engine: L7Engine;
  requests: RequestMetrics;
  ports: WaypointPorts;
  reload(trigger?: ReloadTrigger): ReloadResult;
  close(): Promise<void>;
}

export const l7ConfigOf = (cfg: WaypointConfig): L7Config => ({
  routes: cfg.routes, destinationPolicies: cfg.destinationPolicies, authorization: cfg.l7Policies,
});

export async function startWaypoint(cfg: WaypointConfig, log: Logger, opts: InputsOptions & { configFile?: string } = {}): Promise<RunningWaypoint> {
  const keyLog = keyLogFromEnv(cfg.keyLogFile);
  const tls = meshTlsFromCertDir(cfg.certDir, keyLog);
  const configHash = opts.configHash ?? (opts.configFile ? contentHash(readFileSync(opts.configFile)) : undefined);
  const z = createProxyInputs('waypoint', cfg, tls, log, { ...opts, ...(configHash ? { configHash } : {}) });
  const requests = new RequestMetrics();

  const endpoints = (host: string, port: number): L7Endpoint[] => {
    const { store } = z.xds.snapshot;
    const svc = store.state.services.find((s) => s.hostname === host);
    const target = svc?.ports[String(port)];
    if (!svc || target === undefined) return [];
    return servedWorkloads(store, z.cfg.instanceIp)
      .filter((w) => svc.endpoints.includes(w.workloadIp))
      .map((w) => ({ address: w.workloadIp, port: target, labels: z.cfg.podLabels[w.workloadIp] ?? {}, healthy: w.status === 'Healthy', meta: w }));
  };
  const engine = new L7Engine({
    config: l7ConfigOf(cfg),
    endpoints,
    connect: (ep) => {
      const w = z.xds.snapshot.store.workload(ep.address);
      if (!w) return Promise.reject(new Error(`no workload ${ep.address}`));
      return dialEndpoint(z, w, ep.port);
    },
    random: () => z.random(),
    serverName: 'istio-envoy',
    // Istio's HBONE connect_originate cluster: 2 s.
    connectTimeoutMs: 2000,
    // The waypoint owns the Services it serves: Envoy names those clusters inbound-vip|...
    clusterName: (b) => `inbound-vip|${b.port}|http/${b.subset ?? ''}|${b.host}`,
  });

  // HTTP over a CONNECT tunnel: the proxy core's L7 server, fed tunnels instead of sockets;
  // what the tunnel's CONNECT said (peer, destination) travels with the tunnel.
  const l7 = createL7Server(engine, log, (r, info) => {
    log.info(requestLogFields(r, info), 'request');
    requests.record(requestLabels(z, r, info), r.durationMs);
  }, { refusals: z.metrics.refusals });

  const inbound = createWaypointInbound(z, (req, t, tunnel: Duplex) => {
    const service = t.kind === 'service'
      ? { host: t.service.hostname, port: t.port }
      : t.service ? { host: t.service.hostname, port: Number(Object.entries(t.service.ports).find(([, tp]) => tp === t.port)?.[0] ?? t.port) } : undefined;
    l7.serve(plainDuplex(tunnel), {
      ...(service ? { service } : {}),
      srcIp: req.peer.ip,
      srcPrincipal: principalOf(req.peer.identity),
      srcNamespace: req.peer.identity.namespace,
      dstIp: req.target.ip,
      dstPort: req.target.port,
    });
  });

  const host = cfg.listen?.host ?? '0.0.0.0';
  const servers: net.Server[] = [];
  const inboundSrv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => inbound.handle(s));
  const running = { z, engine, requests } as RunningWaypoint;
  const admin = waypointAdmin(running);
  const stats = waypointStats(running);
  const readiness = waypointReadiness(running);
  let reloader: Reloader | undefined;
  try {
    const ports: WaypointPorts = {
      inbound: await listenTcp(inboundSrv, host, cfg.listen?.inbound ?? HBONE_PORT),
      admin: await listenTcp(admin, '127.0.0.1', cfg.listen?.admin ?? ADMIN_PORT),
      stats: await listenTcp(stats, host, cfg.listen?.stats ?? STATS_PORT),
      readiness: await listenTcp(readiness, host, cfg.listen?.readiness ?? READINESS_PORT),
    };
    servers.push(inboundSrv, admin, stats, readiness);
    if (opts.configFile) {
      reloader = createReloader(z, opts.configFile, { reloadCerts: () => tls.reload(), onApplied: () => engine.update(l7ConfigOf(z.cfg)) });
    }
    z.ready = true;
    log.info({ instanceIp: cfg.instanceIp, identity: cfg.identity, gateway: cfg.gateway, ports, config: z.xds.version }, 'waypoint ready');
    Object.assign(running, {
      ports,
      reload(trigger: ReloadTrigger = 'api') {
        if (!reloader) throw new Error('this waypoint was started without a config file to reload');
        return reloader.reload(trigger);
      },
      async close() {
        reloader?.close();
        z.ready = false;
        inbound.close();
        z.pool.close();
        await l7.close();
        await engine.close();
        await Promise.all(servers.map((s) => new Promise<void>((r) => {
          s.close(() => r());
          (s as http.Server).closeAllConnections?.();
        })));
        keyLog?.close();
      },
    });
    return running;
  } catch (e) {
    reloader?.close();
    for (const s of servers) s.close();
    z.pool.close();
    throw e;
  }
}
