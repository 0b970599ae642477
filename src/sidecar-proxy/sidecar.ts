// One sidecar proxy (Envoy's role in a sidecar pod): the proxy core's inputs as kind
// 'sidecar', the outbound capture listener (15001), the inbound capture listener (15006), HBONE
// termination (15008), two L7 engines (client-side routing outbound, the pod's RBAC inbound)
// and the admin, Prometheus and readiness side doors. main.ts is the process wrapper; tests
// start this in-process.
import net from 'node:net';
import type http from 'node:http';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { originalDst, socketFd } from '../host/sys.js';
import { meshTlsFromCertDir } from '../mesh/cert-dir.js';
import { keyLogFromEnv } from '../mesh/keylog.js';
import { parseSpiffe } from '../mesh/identity.js';
import { ADMIN_PORT, ENVOY_PROMETHEUS_PORT, HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT, READINESS_PORT } from '../mesh/ports.js';
import { contentHash } from '../proxy/control-plane.js';
import { createDialer } from '../proxy/dialer.js';
import { createProxyInputs, type InputsOptions } from '../proxy/inputs.js';
import { createL7Server } from '../proxy/l7-server.js';
import { closeServers, listenTcp } from '../proxy/listen.js';
import { createReloader, type Reloader, type ReloadResult, type ReloadTrigger } from '../proxy/reload.js';
import { RequestMetrics } from '../proxy/request-metrics.js';
import { L7Engine, type L7Config } from '../l7/engine.js';
import type { L7Endpoint } from '../l7/backends.js';
import { DEFAULT_RETRY_POLICY } from '../l7/model.js';
import type { Address } from '../mesh/hbone-server.js';
import { INBOUND_PASSTHROUGH_SRC } from '../sidecar/istio-iptables.js';
import type { SidecarConfig, SidecarPorts } from './config.js';
import type { SidecarContext } from './context.js';
import { dialTransport } from './dial.js';
import { decideTransport, type EndpointTransport } from './transport.js';
import { handleOutbound } from './outbound.js';
import { connectApp, createSidecarHbone, handleInboundCapture } from './inbound.js';
import { serviceOfPodPort, sidecarRequestLabels, sidecarRequestLogFields } from './request-log.js';
import { sidecarAdmin, sidecarReadiness, sidecarStats, transportText } from './admin.js';

export interface RunningSidecar extends SidecarContext {
  ports: SidecarPorts;
  reload(trigger?: ReloadTrigger): ReloadResult;
  close(): Promise<void>;
}

export interface SidecarStartOptions extends InputsOptions {
  configFile?: string;
  /** SO_ORIGINAL_DST by default; tests on loopback, where nothing is REDIRECTed, inject it. */
  origDstOf?(sock: net.Socket): Address;
  /** Envoy's 127.0.0.6 by default. */
  appSource?: string;
}

/** Client side: the mesh's routes and destination rules; no RBAC (the server side enforces it). */
export const outboundL7Config = (cfg: SidecarConfig): L7Config => ({ routes: cfg.routes, destinationPolicies: cfg.destinationPolicies, authorization: [] });
/** Server side: the policies that select this pod; routing is the client's business. */
export const inboundL7Config = (cfg: SidecarConfig): L7Config => ({ routes: [], destinationPolicies: [], authorization: cfg.l7Policies });

export async function startSidecar(cfg: SidecarConfig, log: Logger, opts: SidecarStartOptions = {}): Promise<RunningSidecar> {
  const identity = parseSpiffe(cfg.identity);
  if (!identity) throw new Error(`sidecar identity ${cfg.identity} is not a SPIFFE URI (spiffe://<td>/ns/<ns>/sa/<sa>)`);
  const keyLog = keyLogFromEnv(cfg.keyLogFile);
  const tls = meshTlsFromCertDir(cfg.certDir, keyLog);
  const configHash = opts.configHash ?? (opts.configFile ? contentHash(readFileSync(opts.configFile)) : undefined);
  // The proxy runs as uid 1337: its own connections are not captured and need no spoofing.
  const z = createProxyInputs('sidecar', cfg, tls, log, { dialer: createDialer('off', log), ...opts, ...(configHash ? { configHash } : {}) });
  const requests = new RequestMetrics();
  const s = { z, identity, requests, appSource: opts.appSource ?? INBOUND_PASSTHROUGH_SRC, ownPorts: new Set<number>() } as SidecarContext;
  s.origDstOf = opts.origDstOf ?? ((sock) => originalDst(socketFd(sock)));

  const serviceEndpoints = (host: string, port: number): L7Endpoint[] => {
    const { store } = z.xds.snapshot;
    const svc = store.state.services.find((x) => x.hostname === host);
    const target = svc?.ports[String(port)];
    if (!svc || target === undefined) return [];
    return svc.endpoints.flatMap((ip) => {
      const w = store.workload(ip);
      return w ? [{ address: ip, port: target, labels: z.cfg.podLabels[ip] ?? {}, healthy: w.status === 'Healthy', meta: w }] : [];
    });
  };
  s.outboundEngine = new L7Engine({
    config: outboundL7Config(cfg),
    endpoints: serviceEndpoints,
    connect: (ep) => dialTransport(s, decideTransport(z.cfg, z.xds.snapshot.store, { ip: ep.address, port: ep.port }, z.random)),
    random: () => z.random(),
    serverName: 'envoy',
    defaultRouteRetries: DEFAULT_RETRY_POLICY,
    includeAttemptCount: true,
  });
  s.inboundEngine = new L7Engine({
    config: inboundL7Config(cfg),
    endpoints: () => [],
    connect: (ep) => connectApp(s, { ip: ep.address, port: ep.port }),
    random: () => z.random(),
    serverName: 'istio-envoy',
    clusterName: (b) => `inbound|${b.port}||`,
  });
  /** How the last attempt's endpoint is reached (the same decision the engine's connect made). */
  const upstreamTransport = (hostPort: string | undefined): EndpointTransport | undefined => {
    const m = hostPort ? /^(.*):(\d+)$/.exec(hostPort) : null;
    if (!m) return undefined;
    try {
      return decideTransport(z.cfg, z.xds.snapshot.store, { ip: m[1], port: Number(m[2]) });
    } catch {
      return undefined;
    }
  };
  s.outboundHttp = createL7Server(s.outboundEngine, log, (r, info) => {
    const t = upstreamTransport(r.upstreamHost);
    log.info({ ...sidecarRequestLogFields('source', r, info), ...(t ? { upstream_transport: transportText(t) } : {}) }, 'request');
    const { store } = z.xds.snapshot;
    requests.record(sidecarRequestLabels({
      reporter: 'source', store, self: store.workload(z.cfg.instanceIp), selfIdentity: z.cfg.identity, r, info,
      upstreamSecure: t?.kind === 'hbone' || t?.kind === 'istio-mtls',
    }), r.durationMs);
  }, { refusals: z.metrics.refusals });
  s.inboundHttp = createL7Server(s.inboundEngine, log, (r, info) => {
    const { store } = z.xds.snapshot;
    const service = serviceOfPodPort(store, z.cfg.instanceIp, info.dstPort)?.service.hostname;
    // Envoy's inbound cluster for the app port (the engine names a workload-addressed one by the pod).
    if (r.upstreamCluster) r.upstreamCluster = `inbound|${info.dstPort}||`;
    log.info(sidecarRequestLogFields('destination', r, info, service), 'request');
    requests.record(sidecarRequestLabels({
      reporter: 'destination', store, self: store.workload(z.cfg.instanceIp), selfIdentity: z.cfg.identity, r, info, ...(service ? { service } : {}),
    }), r.durationMs);
  }, { refusals: z.metrics.refusals });

  const hbone = createSidecarHbone(s);
  const host = cfg.listen?.host ?? '0.0.0.0';
  let ports: SidecarPorts | undefined;
  const outboundSrv = net.createServer({ allowHalfOpen: true }, (sock) => void handleOutbound(s, sock));
  const inboundSrv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => void handleInboundCapture(s, sock));
  const hboneSrv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => hbone.handle(sock));
  const admin = sidecarAdmin(s, () => ports);
  const stats = sidecarStats(s);
  const readiness = sidecarReadiness(s);
  const servers: Array<net.Server | http.Server> = [];
  let reloader: Reloader | undefined;
  const listen = async (srv: net.Server, h: string, port: number): Promise<number> => {
    const p = await listenTcp(srv, h, port);
    servers.push(srv);
    s.ownPorts.add(p);
    return p;
  };
  try {
    ports = {
      outbound: await listen(outboundSrv, host, cfg.listen?.outbound ?? OUTBOUND_CAPTURE_PORT),
      inbound: await listen(inboundSrv, host, cfg.listen?.inbound ?? INBOUND_PLAINTEXT_PORT),
      // Envoy has connect_terminate only when HBONE is enabled for the proxy (reference §4).
      hbone: cfg.hbone ? await listen(hboneSrv, host, cfg.listen?.hbone ?? HBONE_PORT) : 0,
      admin: await listen(admin, '127.0.0.1', cfg.listen?.admin ?? ADMIN_PORT),
      stats: await listen(stats, host, cfg.listen?.stats ?? ENVOY_PROMETHEUS_PORT),
      readiness: await listen(readiness, host, cfg.listen?.readiness ?? READINESS_PORT),
    };
    if (opts.configFile) {
      reloader = createReloader(z, opts.configFile, {
        reloadCerts: () => tls.reload(),
        onApplied: () => {
          s.outboundEngine.update(outboundL7Config(z.cfg));
          s.inboundEngine.update(inboundL7Config(z.cfg));
        },
      });
    }
    z.ready = true;
    log.info({ instanceIp: cfg.instanceIp, identity: cfg.identity, pod: `${cfg.pod.namespace}/${cfg.pod.name}`, hbone: cfg.hbone, mtls: cfg.mtls.mode, ports, config: z.xds.version }, 'sidecar ready');
    const running = s as RunningSidecar;
    Object.assign(running, {
      ports,
      reload(trigger: ReloadTrigger = 'api') {
        if (!reloader) throw new Error('this sidecar was started without a config file to reload');
        return reloader.reload(trigger);
      },
      async close() {
        reloader?.close();
        z.ready = false;
        hbone.close();
        z.pool.close();
        await s.outboundHttp.close();
        await s.inboundHttp.close();
        await s.outboundEngine.close();
        await s.inboundEngine.close();
        await closeServers(servers);
        keyLog?.close();
      },
    });
    return running;
  } catch (e) {
    reloader?.close();
    for (const srv of servers) srv.close();
    z.pool.close();
    throw e;
  }
}
