// What a waypoint serves (reference §5: "only for its own pods and Services"): the workloads
// whose waypointAddresses name it, and the Services with such a workload behind them. Every
// CONNECT is resolved here to a destination the waypoint may route, or refused.
import type { Address } from '../mesh/hbone-server.js';
import type { Service, Workload, WorkloadStore } from '../mesh/workloads.js';

export type ServedTarget =
  /** The original VIP:port a client ztunnel kept as authority (ambient -> waypoint). */
  | { kind: 'service'; service: Service; port: number; targetPort: number; endpoints: Workload[] }
  /** A pod IP:port a sidecar already chose (sidecar -> waypoint, reference §4 table). */
  | { kind: 'workload'; workload: Workload; port: number; service?: Service };

export function servedWorkloads(store: WorkloadStore, waypointIp: string): Workload[] {
  return store.state.workloads.filter((w) => w.waypointAddresses.includes(waypointIp));
}

/** The destination of a CONNECT to `target`, or a reason it is not this waypoint's. */
export function resolveServed(store: WorkloadStore, waypointIp: string, target: Address): ServedTarget | { refused: string } {
  const served = servedWorkloads(store, waypointIp);
  const svc = store.state.services.find((s) => s.vips.includes(target.ip));
  if (svc) {
    const targetPort = svc.ports[String(target.port)];
    if (targetPort === undefined) return { refused: `Service ${svc.hostname} has no port ${target.port}` };
    const endpoints = served.filter((w) => svc.endpoints.includes(w.workloadIp));
    if (!endpoints.length) return { refused: `Service ${svc.hostname} has no workload this waypoint serves` };
    return { kind: 'service', service: svc, port: target.port, targetPort, endpoints };
  }
  const w = served.find((x) => x.workloadIp === target.ip);
  if (!w) return { refused: `${target.ip} is neither a Service nor a workload this waypoint serves` };
  const service = store.state.services.find((s) => s.endpoints.includes(w.workloadIp) && Object.values(s.ports).includes(target.port));
  return { kind: 'workload', workload: w, port: target.port, ...(service ? { service } : {}) };
}
