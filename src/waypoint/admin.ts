// A waypoint's side doors, as Envoy's: admin on 127.0.0.1:15000 (/config_dump with its
// listeners' view: served workloads, routes, clusters and endpoints with their upstream pool
// gauges, and the config version), Prometheus on :15020 (TCP and HTTP metrics, upstream pools), readiness on :15021.
import http from 'node:http';
import { servedWorkloads } from './served.js';
import type { RunningWaypoint } from './waypoint.js';
import { renderUpstreamGauges, sumUpstream } from '../proxy/request-metrics.js';

/** Envoy-like view: what `lab proxy-config WAYPOINT` prints as tables. */
export function waypointConfigDump(w: Pick<RunningWaypoint, 'z'> & Partial<Pick<RunningWaypoint, 'engine'>>): Record<string, unknown> {
  const { z } = w;
  const pools = w.engine?.upstreamStats() ?? [];
  const { store, ...version } = z.xds.snapshot;
  const served = servedWorkloads(store, z.cfg.instanceIp);
  const services = store.state.services.filter((s) => s.endpoints.some((ip) => served.some((x) => x.workloadIp === ip)));
  const clusters = services.flatMap((s) => Object.entries(s.ports).flatMap(([port, target]) => {
    const dr = z.cfg.destinationPolicies.find((d) => d.host === s.hostname);
    const subsets = [undefined, ...(dr?.subsets ?? []).map((x) => x.name)];
    return subsets.map((subset) => {
      const labels = subset ? dr!.subsets.find((x) => x.name === subset)!.labels : {};
      const eps = served.filter((x) => s.endpoints.includes(x.workloadIp))
        .filter((x) => Object.entries(labels).every(([k, v]) => (z.cfg.podLabels[x.workloadIp] ?? {})[k] === v));
      return {
        name: `inbound-vip|${port}|${(z.cfg.httpPorts[s.hostname] ?? []).includes(Number(port)) ? 'http' : 'tcp'}/${subset ?? ''}|${s.hostname}`,
        service: s.hostname, port: Number(port), subset: subset ?? null, loadBalancer: (subset && dr?.subsets.find((x) => x.name === subset)?.loadBalancer) ?? dr?.loadBalancer ?? 'LEAST_REQUEST',
        endpoints: eps.map((x) => `${x.workloadIp}:${target}`),
        // The pools are per endpoint: an endpoint in a subset counts in the subset's cluster and in the Service's.
        upstream: sumUpstream(pools, eps.map((x) => `${x.workloadIp}:${target}`)),
      };
    });
  }));
  return {
    config: version,
    gateway: z.cfg.gateway,
    identity: z.cfg.identity,
    served: served.map((x) => ({ ip: x.workloadIp, name: `${x.namespace}/${x.name}`, serviceAccount: x.serviceAccount })),
    listeners: services.map((s) => ({ service: s.hostname, vips: s.vips, ports: Object.keys(s.ports).map(Number).map((p) => ({ port: p, protocol: (z.cfg.httpPorts[s.hostname] ?? []).includes(p) ? 'HTTP' : 'TCP' })) })),
    routes: z.cfg.routes,
    clusters,
    authorization: z.cfg.l7Policies,
  };
}

const send = (res: http.ServerResponse, code: number, type: string, body: string): void => {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

const metrics = (w: RunningWaypoint): string => w.z.metrics.render() + w.requests.render() + renderUpstreamGauges([{ stats: w.engine.upstreamStats() }]);

export function waypointAdmin(w: RunningWaypoint): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/config_dump') return send(res, 200, 'application/json', JSON.stringify(waypointConfigDump(w), null, 2) + '\n');
    if (path === '/healthz/ready') return send(res, w.z.ready ? 200 : 503, 'text/plain', w.z.ready ? 'ready\n' : 'not ready\n');
    if (path === '/metrics' || path === '/stats/prometheus') return send(res, 200, 'text/plain; version=0.0.4', metrics(w));
    return send(res, 404, 'text/plain', 'not found\n');
  });
}

export function waypointStats(w: RunningWaypoint): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics' || path === '/stats/prometheus') return send(res, 200, 'text/plain; version=0.0.4', metrics(w));
    return send(res, 404, 'text/plain', 'not found\n');
  });
}

export function waypointReadiness(w: RunningWaypoint): http.Server {
  return http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/healthz/ready') return send(res, w.z.ready ? 200 : 503, 'text/plain', w.z.ready ? 'ready\n' : 'not ready\n');
    return send(res, 404, 'text/plain', 'not found\n');
  });
}
