// :15008, HBONE to this node's pods (ztunnel proxy/inbound.rs). TLS is terminated as the
// workload the connection was addressed to; each CONNECT is authorized and connected to
// its authority with the client's address as source.
import { authorize } from '../mesh/authz.js';
import { copyBidirectional } from '../mesh/copy.js';
import { createHboneServer, type HboneRequest, type HboneServer } from '../mesh/hbone-server.js';
import { sameIdentity } from '../mesh/identity.js';
import { workloadIdentity, type Workload, type WorkloadStore } from '../mesh/workloads.js';
import { ConnectionResult, type AccessRecord } from '../proxy/connection.js';
import { fmtAddr } from '../proxy/inputs.js';
import type { ZtunnelInputs } from './config.js';

/** Is `peer` one of the destination's waypoints (which already applied policy)? */
function fromWaypoint(store: WorkloadStore, dst: Workload, req: HboneRequest): boolean {
  return dst.waypointAddresses.some((ip) => {
    const wp = store.workload(ip);
    return !!wp && sameIdentity(workloadIdentity(wp), req.peer.identity);
  });
}

export async function handleInboundRequest(z: ZtunnelInputs, req: HboneRequest): Promise<AccessRecord> {
  const { store } = z.xds.snapshot;
  const result = new ConnectionResult(z, {
    direction: 'inbound',
    src: { addr: fmtAddr(req.peer), identity: req.peer.identity },
    dst: { addr: req.authority, hboneAddr: fmtAddr(req.origDst) },
    via: 'hbone',
  });
  const rec = result.rec;

  const dst = store.workload(req.target.ip);
  if (!dst) {
    req.reject(404, 'unknown destination');
    return result.failed(`unknown destination ${req.target.ip}`, { status: 404 });
  }
  rec.dst.workload = dst;
  const svc = store.serviceForWorkload(dst);
  if (svc) rec.dst.service = svc.hostname;

  let srcIp = req.peer.ip;
  const viaWaypoint = fromWaypoint(store, dst, req);
  // The waypoint enforced policy; the real client is in Forwarded when it sends one.
  if (viaWaypoint && req.forwardedFor) {
    srcIp = req.forwardedFor;
    rec.src.addr = srcIp;
  }
  const srcWorkload = store.workload(srcIp);
  if (srcWorkload) rec.src.workload = srcWorkload;
  if (viaWaypoint) {
    rec.reason = 'from a waypoint of the destination: RBAC skipped';
  } else if (dst.waypointAddresses.length > 0) {
    req.reject(401, 'waypoint bypassed');
    return result.denied('destination has a waypoint; direct HBONE refused', { status: 401 });
  } else {
    const d = authorize({ srcIdentity: req.peer.identity, srcIp, dstIp: req.target.ip, dstPort: req.target.port }, store.policiesFor(dst));
    if (!d.allowed) {
      req.reject(401, d.reason);
      return result.denied(d.reason, { status: 401, ...(d.policy ? { policy: d.policy } : {}) });
    }
  }

  let upstream;
  try {
    upstream = await z.dialer.connected(req.target, srcIp);
  } catch (e) {
    req.reject(503, (e as Error).message);
    return result.failed(`connect ${req.authority}: ${(e as Error).message}`, { status: 503 });
  }
  rec.spoofed = upstream.spoofed;
  const down = req.accept();
  result.opened();
  return result.complete(await copyBidirectional(down, upstream.socket));
}

export function createInbound(z: ZtunnelInputs): HboneServer {
  return createHboneServer({
    tls: z.tls,
    refusals: z.metrics.refusals,
    identityFor: (ip) => {
      const w = z.xds.store.workload(ip);
      return w ? workloadIdentity(w) : undefined;
    },
    onRequest: (req) => void handleInboundRequest(z, req),
    onRefused: (r) => {
      new ConnectionResult(z, {
        direction: 'inbound',
        src: { addr: r.peerIp ?? 'unknown' },
        dst: { addr: r.authority ?? fmtAddr(r.origDst), hboneAddr: fmtAddr(r.origDst) },
        via: 'hbone',
      }).failed(r.reason, r.status ? { status: r.status } : {});
    },
  });
}
