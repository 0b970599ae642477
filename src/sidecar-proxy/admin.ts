// A sidecar's side doors, as Envoy's: admin on 127.0.0.1:15000 (/config_dump: its listeners,
// routes, clusters with their endpoints and how each is reached, the L7 authorization it
// enforces, the config version), Prometheus on :15090 (/stats/prometheus) and readiness on
// :15021 (/healthz/ready, which istio-agent serves in a real pod).
import http from 'node:http';
import { fmtAddr } from '../proxy/inputs.js';
import { decideTransport, type EndpointTransport } from './transport.js';
import type { SidecarContext } from './context.js';
import type { SidecarPorts } from './config.js';
import { DEFAULT_RETRY_POLICY } from '../l7/model.js';
import { renderUpstreamGauges, sumUpstream } from '../proxy/request-metrics.js';
import { ADMIN_PORT, ENVOY_PROMETHEUS_PORT, HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT, READINESS_PORT } from '../mesh/ports.js';

/** One line for how an endpoint is reached: `hbone 10.244.0.7:15008 (waypoint default/x)`, `istio-mtls`, `plaintext`, `passthrough`. */
export const transportText = (t: EndpointTransport): string => {
  switch (t.kind) {
    case 'hbone': return `hbone ${fmtAddr(t.hboneAddr)}${t.waypoint ? ` (waypoint ${t.waypoint.namespace}/${t.waypoint.name})` : ''}`;
    case 'istio-mtls': return 'istio-mtls';
    default: return t.kind;
  }
};

/** Envoy-like view: what `lab proxy-config POD` prints as tables (same keys as a waypoint's dump). */
export function sidecarConfigDump(s: SidecarContext, ports?: SidecarPorts): Record<string, unknown> {
  const { z } = s;
  const cfg = z.cfg;
  const { store, ...version } = z.xds.snapshot;
  const outPools = s.outboundEngine?.upstreamStats() ?? [];
  const inPools = s.inboundEngine?.upstreamStats() ?? [];
  const services = store.state.services;
  const protocol = (host: string, port: number): string => ((cfg.httpPorts[host] ?? []).includes(port) ? 'HTTP' : 'TCP');
  const outbound = services.flatMap((svc) => Object.entries(svc.ports).flatMap(([port, target]) => {
    const dr = cfg.destinationPolicies.find((d) => d.host === svc.hostname);
    const subsets = [undefined, ...(dr?.subsets ?? []).map((x) => x.name)];
    return subsets.map((subset) => {
      const sel = subset ? dr!.subsets.find((x) => x.name === subset)!.labels : {};
      const eps = svc.endpoints.filter((ip) => Object.entries(sel).every(([k, v]) => (cfg.podLabels[ip] ?? {})[k] === v));
      return {
        name: `outbound|${port}|${subset ?? ''}|${svc.hostname}`,
        service: svc.hostname, port: Number(port), subset: subset ?? null,
        loadBalancer: (subset && dr?.subsets.find((x) => x.name === subset)?.loadBalancer) ?? dr?.loadBalancer ?? 'LEAST_REQUEST',
        // Each endpoint with how this sidecar reaches it (Envoy's per-endpoint transport socket match).
        endpoints: eps.map((ip) => {
          let transport: string;
          try {
            transport = transportText(decideTransport(cfg, store, { ip, port: target }));
          } catch (e) {
            transport = `error: ${(e as Error).message}`;
          }
          return { address: ip, port: target, transport };
        }),
        // The pools are per endpoint: an endpoint in a subset counts in the subset's cluster and in the Service's.
        upstream: sumUpstream(outPools, eps.map((ip) => `${ip}:${target}`)),
      };
    });
  }));
  const inbound = cfg.inboundPorts.map((p) => ({
    name: `inbound|${p}||`, service: null, port: p, subset: null, loadBalancer: 'PASSTHROUGH',
    endpoints: [{ address: cfg.instanceIp, port: p, transport: `tcp from ${s.appSource}` }],
    upstream: sumUpstream(inPools, inPools.filter((x) => x.endpoint.endsWith(`:${p}`)).map((x) => x.endpoint)),
  }));
  const at = (port: number | undefined, fallback: number, host = '0.0.0.0'): string => `${host}:${port ?? fallback}`;
  // As `istioctl proxy-config listeners` lists an Envoy sidecar: the virtual listeners the nat
  // rules send traffic to, one outbound listener per Service port (what 15001 hands each
  // original destination to), and the side doors.
  const listeners = [
    { name: 'virtualOutbound', address: at(ports?.outbound, OUTBOUND_CAPTURE_PORT), what: 'REDIRECTed outbound (ISTIO_REDIRECT), original destination from SO_ORIGINAL_DST; unknown destinations passed through' },
    { name: 'virtualInbound', address: at(ports?.inbound, INBOUND_PLAINTEXT_PORT), what: `REDIRECTed inbound (ISTIO_IN_REDIRECT): ${cfg.mtls.mode === 'STRICT' ? 'Istio mTLS only (STRICT: plaintext refused)' : 'plaintext or Istio mTLS (PERMISSIVE)'}, then the app from ${s.appSource}` },
    ...(cfg.hbone ? [{ name: 'connect_terminate', address: at(ports?.hbone, HBONE_PORT), what: `HBONE (mTLS, CONNECT to ${cfg.instanceIp} only), then the inbound chain` }] : []),
    ...services.flatMap((svc) => Object.keys(svc.ports).map(Number).flatMap((port) => svc.vips.map((vip) => ({
      name: `${vip}_${port}`, address: `${vip}:${port}`, service: svc.hostname, port, protocol: protocol(svc.hostname, port),
      what: protocol(svc.hostname, port) === 'HTTP'
        ? `HTTP: routes of ${svc.hostname}:${port} (client-side routing, retries, timeouts, faults)`
        : `TCP: cluster outbound|${port}||${svc.hostname}`,
    })))),
    { name: 'admin', address: at(ports?.admin, ADMIN_PORT, '127.0.0.1'), what: '/config_dump' },
    { name: 'prometheus', address: at(ports?.stats, ENVOY_PROMETHEUS_PORT), what: '/stats/prometheus' },
    { name: 'readiness', address: at(ports?.readiness, READINESS_PORT), what: '/healthz/ready' },
  ];
  return {
    config: version,
    kind: 'sidecar',
    pod: cfg.pod,
    identity: cfg.identity,
    hbone: cfg.hbone,
    mtls: cfg.mtls,
    ports: ports ?? null,
    listeners,
    // The Services it knows, with which ports are HTTP (a waypoint's dump calls these its listeners).
    services: services.map((svc) => ({
      service: svc.hostname, vips: svc.vips,
      ports: Object.keys(svc.ports).map(Number).map((p) => ({ port: p, protocol: protocol(svc.hostname, p) })),
    })),
    inboundPorts: cfg.inboundPorts,
    routes: cfg.routes,
    // A Service without a route rule still gets Istio's default retry policy at a sidecar (as Envoy's default route).
    defaultRouteRetries: DEFAULT_RETRY_POLICY,
    clusters: [...outbound, ...inbound],
    authorization: cfg.l7Policies,
  };
}

const send = (res: http.ServerResponse, code: number, type: string, body: string): void => {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

// The inbound engine only ever sends to the app's port (its original destination), so its
// endpoints are the cluster inbound|PORT||; the outbound one's are counted per endpoint.
const metrics = (s: SidecarContext): string => s.z.metrics.render() + s.requests.render() + renderUpstreamGauges([
  { stats: s.outboundEngine.upstreamStats() },
  { stats: s.inboundEngine.upstreamStats(), cluster: (x) => `inbound|${x.endpoint.slice(x.endpoint.lastIndexOf(':') + 1)}||` },
]);

export function sidecarAdmin(s: SidecarContext, ports: () => SidecarPorts | undefined): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/config_dump') return send(res, 200, 'application/json', JSON.stringify(sidecarConfigDump(s, ports()), null, 2) + '\n');
    if (path === '/healthz/ready' || path === '/ready') return send(res, s.z.ready ? 200 : 503, 'text/plain', s.z.ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
    if (path === '/metrics' || path === '/stats/prometheus') return send(res, 200, 'text/plain; version=0.0.4', metrics(s));
    return send(res, 404, 'text/plain', 'not found\n');
  });
}

export function sidecarStats(s: SidecarContext): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics' || path === '/stats/prometheus') return send(res, 200, 'text/plain; version=0.0.4', metrics(s));
    return send(res, 404, 'text/plain', 'not found\n');
  });
}

export function sidecarReadiness(s: SidecarContext): http.Server {
  return http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/healthz/ready') return send(res, s.z.ready ? 200 : 503, 'text/plain', s.z.ready ? 'ready\n' : 'not ready\n');
    return send(res, 404, 'text/plain', 'not found\n');
  });
}
