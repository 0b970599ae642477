// :15008 of a waypoint: HBONE only (reference §5), terminated as the waypoint's own identity.
// Each CONNECT names a Service VIP:port (from a client ztunnel) or a pod IP:port (from a
// sidecar); anything the waypoint does not serve is refused. HTTP ports go through the L7
// engine (l7-listener.ts); other ports are proxied as TCP to an endpoint, over HBONE again,
// with the waypoint's identity, to the endpoint's :15008 (its node's ztunnel takes it there).
import { copyBidirectional } from '../mesh/copy.js';
import { createHboneServer, type HboneRequest, type HboneServer } from '../mesh/hbone-server.js';
import { parseSpiffe, type SpiffeId } from '../mesh/identity.js';
import { formatAuthority } from '../mesh/hbone-client.js';
import { HBONE_PORT } from '../mesh/ports.js';
import { workloadIdentity, type Workload } from '../mesh/workloads.js';
import { ConnectionResult } from '../proxy/connection.js';
import { fmtAddr } from '../proxy/inputs.js';
import type { Duplex } from 'node:stream';
import { resolveServed, type ServedTarget } from './served.js';
import type { WaypointInputs } from './waypoint.js';

export function waypointIdentity(z: WaypointInputs): SpiffeId {
  const id = parseSpiffe(z.cfg.identity);
  if (!id) throw new Error(`waypoint identity ${z.cfg.identity} is not a SPIFFE URI`);
  return id;
}

/** An HBONE stream from the waypoint to `w`'s :15008, asking for `w:port`. No spoofing: the waypoint's own IP. */
export async function dialEndpoint(z: WaypointInputs, w: Workload, port: number): Promise<Duplex> {
  const { stream } = await z.pool.connect(
    { source: waypointIdentity(z), expected: workloadIdentity(w), address: { ip: w.workloadIp, port: HBONE_PORT } },
    formatAuthority({ ip: w.workloadIp, port }),
    {},
  );
  return stream;
}

export function isHttp(z: WaypointInputs, t: ServedTarget): boolean {
  const svc = t.service;
  if (!svc) return false;
  const ports = z.cfg.httpPorts[svc.hostname] ?? [];
  if (t.kind === 'service') return ports.includes(t.port);
  // A pod port: HTTP when the Service port that maps to it is.
  return Object.entries(svc.ports).some(([p, target]) => target === t.port && ports.includes(Number(p)));
}

export type HttpHandoff = (req: HboneRequest, target: ServedTarget, tunnel: Duplex) => void;

async function proxyTcp(z: WaypointInputs, req: HboneRequest, t: ServedTarget, result: ConnectionResult): Promise<void> {
  const w = t.kind === 'service' ? t.endpoints[Math.floor(z.random() * t.endpoints.length)] : t.workload;
  const port = t.kind === 'service' ? t.targetPort : t.port;
  result.rec.dst = { ...result.rec.dst, addr: fmtAddr({ ip: w.workloadIp, port }), workload: w, hboneAddr: fmtAddr({ ip: w.workloadIp, port: HBONE_PORT }) };
  let upstream: Duplex;
  try {
    upstream = await dialEndpoint(z, w, port);
  } catch (e) {
    req.reject(503, (e as Error).message);
    result.failed(`connect ${w.workloadIp}:${port}: ${(e as Error).message}`, { status: 503 });
    return;
  }
  const down = req.accept();
  result.opened();
  result.complete(await copyBidirectional(down, upstream));
}

export function createWaypointInbound(z: WaypointInputs, http: HttpHandoff): HboneServer {
  const onRequest = async (req: HboneRequest): Promise<void> => {
    const { store } = z.xds.snapshot;
    const result = new ConnectionResult(z, {
      direction: 'inbound',
      src: { addr: fmtAddr(req.peer), identity: req.peer.identity, ...(store.workload(req.peer.ip) ? { workload: store.workload(req.peer.ip)! } : {}) },
      dst: { addr: req.authority, hboneAddr: fmtAddr(req.origDst) },
      via: 'hbone',
    });
    const t = resolveServed(store, z.cfg.instanceIp, req.target);
    if ('refused' in t) {
      req.reject(401, t.refused);
      result.denied(t.refused, { status: 401 });
      return;
    }
    if (t.service) result.rec.dst.service = t.service.hostname;
    if (isHttp(z, t)) {
      // The L7 engine logs each request; this record is the tunnel that carried them.
      result.rec.via = 'hbone+http';
      const tunnel = req.accept();
      result.opened();
      let up = 0;
      let down = 0;
      tunnel.on('data', (b: Buffer) => { up += b.length; });
      const t0 = performance.now();
      tunnel.once('close', () => result.complete({ aToB: up, bToA: down, durationMs: performance.now() - t0 }));
      http(req, t, tunnel);
      return;
    }
    await proxyTcp(z, req, t, result);
  };
  return createHboneServer({
    tls: z.tls,
    refusals: z.metrics.refusals,
    // The authority names the Service VIP (or the pod) the client meant, not the waypoint.
    requireAuthorityOnOrigDst: false,
    identityFor: (ip) => (ip === z.cfg.instanceIp ? waypointIdentity(z) : undefined),
    onRequest: (req) => void onRequest(req),
    onRefused: (r) => {
      new ConnectionResult(z, {
        direction: 'inbound', src: { addr: r.peerIp ?? 'unknown' },
        dst: { addr: r.authority ?? fmtAddr(r.origDst), hboneAddr: fmtAddr(r.origDst) }, via: 'hbone',
      }).failed(r.reason, r.status ? { status: r.status } : {});
    },
  });
}
