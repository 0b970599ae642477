// ztunnel's HTTP side doors (ports in mesh/ports.ts): admin (127.0.0.1:15000 /config_dump),
// Prometheus (:15020 /metrics) and readiness (:15021 /healthz/ready).
import http from 'node:http';
import type { ZtunnelInputs } from './config.js';

/**
 * The config_dump body: workloads keyed by IP, as ztunnel 1.18 prints them, plus the config
 * version (a counter of applied configs and the content hash) so a reload can be seen.
 */
export function configDump(z: ZtunnelInputs): Record<string, unknown> {
  const { store, ...version } = z.xds.snapshot;
  return {
    config: version,
    workloads: Object.fromEntries(store.state.workloads.map((w) => [w.workloadIp, w])),
    services: store.state.services,
    policies: store.state.policies,
  };
}

const send = (res: http.ServerResponse, code: number, type: string, body: string): void => {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

export function adminServer(z: ZtunnelInputs): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/config_dump') return send(res, 200, 'application/json', JSON.stringify(configDump(z), null, 2) + '\n');
    if (path === '/healthz/ready') return send(res, z.ready ? 200 : 503, 'text/plain', z.ready ? 'ready\n' : 'not ready\n');
    if (path === '/metrics') return send(res, 200, 'text/plain; version=0.0.4', z.metrics.render());
    if (path === '/') return send(res, 200, 'text/plain', '/config_dump\n/healthz/ready\n/metrics\n');
    return send(res, 404, 'text/plain', 'not found\n');
  });
}

export function statsServer(z: ZtunnelInputs): http.Server {
  return http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/metrics') return send(res, 200, 'text/plain; version=0.0.4', z.metrics.render());
    return send(res, 404, 'text/plain', 'not found\n');
  });
}

export function readinessServer(z: ZtunnelInputs): http.Server {
  return http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/healthz/ready') return send(res, z.ready ? 200 : 503, 'text/plain', z.ready ? 'ready\n' : 'not ready\n');
    return send(res, 404, 'text/plain', 'not found\n');
  });
}
