// Each hop in plain words, for someone who has never read an iptables rule: what happened
// to the packet at this point and, where we know, why.
import type { ReportHop } from './report.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../mesh/ports.js';

const ip = (ep: string): string => ep.replace(/:\d+$/, '');
const owner = (iface: string): string | undefined => (iface.startsWith('veth-wp-') ? `waypoint ${iface.slice(8)}` : iface.startsWith('veth-') ? iface.slice(5) : undefined);

export function plainStep(h: ReportHop, prev: ReportHop | undefined, legStart: boolean): string {
  const pod = h.where.replace(/^(pod|node|ztunnel|waypoint|sidecar) /, '');
  const markMatch = h.reason ? /marked (0x[0-9a-f]+)/.exec(h.reason) : null;
  const table = h.reason ? /(table \d+|main table) ->/.exec(h.reason)?.[1] : undefined;
  if (legStart) {
    const what = h.flags === 'SYN' ? 'opens a connection (TCP SYN)' : 'sends a packet';
    // Inside a sidecar pod: the app's connection captured to the sidecar, the sidecar's hand-off to the app.
    if (h.interface === 'lo' && h.dst.endsWith(`:${OUTBOUND_CAPTURE_PORT}`)) return `the app in ${pod} opens a connection; the pod's nat rules (ISTIO_OUTPUT -> ISTIO_REDIRECT) send it to its sidecar's port ${OUTBOUND_CAPTURE_PORT} on lo`;
    if (h.interface === 'lo' && h.src.startsWith('127.0.0.6:')) return `the sidecar hands the request to the app in ${pod} over lo, from 127.0.0.6 (its own connections are never captured again)`;
    if (h.role === 'sidecar' && h.encap === 'hbone') return `${h.where} ${what} to ${h.dst}: HBONE, a mutual-TLS tunnel with the pod's own identity (the sidecar's connections, uid 1337, are not captured)`;
    if (h.role === 'sidecar') return `${h.where} ${what} to ${h.dst} itself (uid 1337: not captured again)`;
    if (h.encap === 'hbone') {
      const peer = h.role === 'waypoint' ? 'from the waypoint, with its own identity, to the destination\'s ztunnel' : 'between ztunnels (or a ztunnel and a waypoint)';
      return `${h.where} ${what} to ${h.dst}: HBONE, a mutual-TLS tunnel ${peer}`;
    }
    return `${h.role === 'pod' ? pod : h.where} ${what} to ${h.dst}`;
  }
  if (h.encap === 'geneve' && prev?.encap !== 'geneve') {
    return `wrapped in a Geneve tunnel packet (VNI ${h.vni}) addressed to ${ip(h.outer?.dst ?? '')}`;
  }
  if (h.encap === 'geneve') return `the tunnel packet (VNI ${h.vni}) arrives in ${h.where}`;
  if (h.delivered) {
    const tp = h.reason ? /TPROXY -> (\S+)/.exec(h.reason)?.[1] : undefined;
    if (tp) return `unwrapped on ${h.interface}; the TPROXY rule hands it to the ztunnel listening on ${tp}`;
    if (h.reason?.includes('0x4d3')) return 'a later packet of a connection ztunnel took over: delivered straight to ztunnel\'s socket (mark 0x4d3)';
    if (h.role === 'pod') return `${pod} receives it on its eth0`;
    if (h.role === 'waypoint') return `the waypoint takes the tunnel in on its own HBONE port ${h.dst.replace(/^.*:/, '')} (no redirection: a waypoint is never captured)`;
    if (h.role === 'sidecar' && h.reason?.includes(`REDIRECT --to-ports ${INBOUND_PLAINTEXT_PORT}`)) return `${pod} receives it on eth0; its nat rules (ISTIO_INBOUND -> ISTIO_IN_REDIRECT) send it to the sidecar's inbound port ${INBOUND_PLAINTEXT_PORT}`;
    if (h.role === 'sidecar' && h.dst.endsWith(`:${HBONE_PORT}`)) return `${pod} receives it on eth0; port ${HBONE_PORT} is RETURNed by its nat rules, so the sidecar's own HBONE listener takes it`;
    return `received by ${h.where} on ${h.interface}`;
  }
  const dnat = h.what.includes('DNAT') ? ` kube-proxy swaps the Service address for a pod: now to ${h.dst}.` : '';
  if (h.role === 'node' && h.direction === 'in') {
    const o = owner(h.interface);
    return o ? `it enters ${pod} through ${o === 'ztunnel' ? 'the ztunnel pod' : o}'s veth` : `it enters ${pod} on ${h.interface}`;
  }
  if (h.role === 'node' && h.direction === 'out') {
    const route = markMatch
      ? `${pod}'s rules mark it ${markMatch[1]}, so it is routed by ${table ?? 'a special table'}`
      : `${pod} routes it by ${table ?? 'its routing table'}`;
    const o = owner(h.interface);
    const to = h.interface === 'istioout' ? 'into the istioout tunnel towards the ztunnel pod'
      : h.interface === 'istioin' ? 'into the istioin tunnel towards the ztunnel pod'
        : h.interface === 'eth0' ? 'out of eth0 onto the underlay'
          : o === 'ztunnel' ? 'straight to the ztunnel pod (no tunnel)'
            : o ? `to ${o}` : `out of ${h.interface}`;
    return `${dnat ? `${dnat.trim()} ` : ''}${route} ${to}`;
  }
  if (h.role === 'underlay') return h.direction === 'in' ? 'it crosses the underlay (the network between nodes)' : `the underlay bridge delivers it to ${h.interface.replace(/^underlay-/, '')}`;
  if (h.direction === 'out') return `${h.where} sends it on ${h.interface}`;
  return `${h.where} receives it on ${h.interface}`;
}
