// :15006, plaintext to this node's pods from outside the mesh (ztunnel
// proxy/inbound_passthrough.rs): RBAC without an identity, then a spoofed connect.
import type net from 'node:net';
import { authorize } from '../mesh/authz.js';
import { copyBidirectional } from '../mesh/copy.js';
import { ConnectionResult, type AccessRecord } from '../proxy/connection.js';
import { fmtAddr, plainIp } from '../proxy/inputs.js';
import type { ZtunnelInputs } from './config.js';
import { handleOutbound, type ConnMeta } from './outbound.js';

export async function handleInboundPassthrough(z: ZtunnelInputs, down: net.Socket, meta: ConnMeta = {}): Promise<AccessRecord> {
  down.on('error', () => undefined);
  const { store } = z.xds.snapshot;
  const origDst = meta.origDst ?? { ip: plainIp(down.localAddress), port: down.localPort ?? 0 };
  const peer = meta.peer ?? { ip: plainIp(down.remoteAddress), port: down.remotePort ?? 0 };
  const srcWorkload = store.workload(peer.ip);
  const dst = store.workload(origDst.ip);

  if (dst && dst.waypointAddresses.length > 0 && srcWorkload) {
    // Hairpin: plaintext callers still go through the waypoint, via the outbound logic
    // (which writes its own result), with spoofing off.
    return handleOutbound({ ...z, dialer: { ...z.dialer, mode: 'off' } }, down, { origDst, peer });
  }
  const result = new ConnectionResult(z, {
    direction: 'inbound_passthrough',
    src: { addr: fmtAddr(peer), ...(srcWorkload ? { workload: srcWorkload } : {}) },
    dst: { addr: fmtAddr(origDst) },
    via: 'tcp',
  });
  if (!dst) {
    down.destroy();
    return result.failed(`unknown destination ${origDst.ip}`);
  }
  result.rec.dst.workload = dst;
  const svc = store.serviceForWorkload(dst);
  if (svc) result.rec.dst.service = svc.hostname;
  if (dst.waypointAddresses.length > 0) {
    down.destroy();
    return result.failed('destination has a waypoint; hairpin needs a known source workload');
  }

  // Plaintext has no identity: namespace/principal matches fail, IP/port ones still apply.
  const d = authorize({ srcIp: peer.ip, dstIp: origDst.ip, dstPort: origDst.port }, store.policiesFor(dst));
  if (!d.allowed) {
    down.resetAndDestroy();
    return result.denied(d.reason, d.policy ? { policy: d.policy } : {});
  }
  let upstream;
  try {
    upstream = await z.dialer.connected(origDst, peer.ip);
  } catch (e) {
    down.destroy();
    return result.failed(`connect ${fmtAddr(origDst)}: ${(e as Error).message}`);
  }
  result.rec.spoofed = upstream.spoofed;
  result.opened();
  return result.complete(await copyBidirectional(down, upstream.socket));
}
