// Hop reconstruction: the packets captured in every namespace become journeys (one packet
// followed across namespaces: same inner IP id, TCP seq/ack/flags and length, ordered by time,
// through NAT and Geneve), journeys become connections (legs: journeys that share a 5-tuple
// somewhere), and legs chain through proxies (a leg delivered into a proxy's namespace is
// followed by the next leg that proxy opens). Pure: captures and roles in, hops out.
import {
  decodeFrame, directionOf, tcpFlagNames, tlsClientHelloAlpn, TCP_ACK, TCP_SYN,
  type CapturedFrame, type Direction, type Ipv4,
} from './pcap.js';
import { learnerInterface, ROLE_TRAITS, whereLabel, type ObservationPoint, type Role } from './roles.js';

import { tunnelFacts, type L7Decision, type LogLine, type TunnelFacts } from './proxy-logs.js';
import { HBONE_PORT } from '../mesh/ports.js';
import { isSidecarPort, SIDECAR_INBOUND_SOURCE } from './sidecar.js';

export type Encap = 'none' | 'geneve' | 'hbone';

export { HBONE_PORT };

export interface Observation {
  ts: bigint;
  netns: string;
  ifname: string;
  dir: Direction;
  /** The packet as on the wire (outer headers when encapsulated). */
  outer: Ipv4;
  /** The packet carried: the Geneve payload, else the packet itself. */
  inner: Ipv4;
  vni?: number;
  /** Index of the frame in its netns capture, for writing per-hop pcaps. */
  frameIndex: number;
}

export interface NetnsFrames {
  netns: string;
  frames: CapturedFrame[];
  interfaces: Map<number, string>;
}

export function observationsFrom(captures: NetnsFrames[]): Observation[] {
  const out: Observation[] = [];
  for (const c of captures) {
    c.frames.forEach((f, frameIndex) => {
      const d = decodeFrame(f.linktype, f.data);
      if (!d.ip) return;
      const inner = d.ip.geneve?.inner ?? d.ip;
      out.push({
        ts: f.ts, netns: c.netns, ifname: d.ifIndex !== undefined ? c.interfaces.get(d.ifIndex) ?? `if${d.ifIndex}` : 'any',
        dir: directionOf(d.pktType), outer: d.ip, inner, ...(d.ip.geneve ? { vni: d.ip.geneve.vni } : {}), frameIndex,
      });
    });
  }
  return out;
}

/** Identity of a packet that survives NAT, TPROXY and Geneve: IP id plus TCP state and length. */
export function packetKey(ip: Ipv4): string {
  if (ip.tcp) return `T${ip.id}/${ip.tcp.seq}/${ip.tcp.ack}/${ip.tcp.flags}/${ip.tcp.payload.length}`;
  if (ip.udp) return `U${ip.id}/${ip.udp.payload.length}/${Buffer.from(ip.udp.payload.subarray(0, 12)).toString('hex')}`;
  return `I${ip.id}/${ip.proto}/${ip.totalLength}`;
}

const endpoint = (ip: string, port?: number): string => (port === undefined ? ip : `${ip}:${port}`);
const sportOf = (ip: Ipv4): number | undefined => ip.tcp?.sport ?? ip.udp?.sport;
const dportOf = (ip: Ipv4): number | undefined => ip.tcp?.dport ?? ip.udp?.dport;
export const srcOf = (ip: Ipv4): string => endpoint(ip.src, sportOf(ip));
export const dstOf = (ip: Ipv4): string => endpoint(ip.dst, dportOf(ip));

function tupleKey(netns: string, ip: Ipv4): string {
  const a = srcOf(ip);
  const b = dstOf(ip);
  return `${netns}|${ip.proto}|${a < b ? `${a}|${b}` : `${b}|${a}`}`;
}

export const encapOf = (o: Observation): Encap => {
  if (o.vni !== undefined) return 'geneve';
  const t = o.inner.tcp;
  return t && (t.dport === HBONE_PORT || t.sport === HBONE_PORT) ? 'hbone' : 'none';
};

const pointKey = (o: Observation): string => `${o.netns}|${o.ifname}|${o.dir}|${o.vni ?? ''}`;

export interface Journey {
  key: string;
  obs: Observation[];
}

/** Same packet, across namespaces, in time order. A point seen twice starts a new journey (a retransmission). */
export function buildJourneys(observations: Observation[]): Journey[] {
  const groups = new Map<string, Observation[]>();
  for (const o of observations) {
    const k = packetKey(o.inner);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(o);
  }
  const journeys: Journey[] = [];
  for (const [key, g] of groups) {
    // Equal timestamps: the sending side of a veth pair is seen first.
    g.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : (a.dir === 'out' ? 0 : 1) - (b.dir === 'out' ? 0 : 1)));
    let cur: Journey | undefined;
    let seen = new Set<string>();
    for (const o of g) {
      if (!cur || seen.has(pointKey(o))) {
        cur = { key, obs: [] };
        seen = new Set();
        journeys.push(cur);
      }
      seen.add(pointKey(o));
      cur.obs.push(o);
    }
  }
  journeys.sort((a, b) => (a.obs[0].ts < b.obs[0].ts ? -1 : a.obs[0].ts > b.obs[0].ts ? 1 : 0));
  return journeys;
}

export interface Leg {
  id: number;
  proto: 'tcp' | 'udp' | 'other';
  journeys: Journey[];
  /** The first packet's addresses where it was first seen (the connection as its opener sees it). */
  client: string;
  server: string;
  /** Where the first packet was first seen and where it ended up. */
  originNetns: string;
  deliveredNetns: string;
  syn?: Journey;
  /** The packet shown hop by hop: the SYN, or for a connection opened before the trace (a pooled
   *  HBONE tunnel) the first packet the proxy sent on it during the request. */
  first: Journey;
  /** Opened before the trace started (no SYN seen): reused from a pool. */
  reused: boolean;
  encap: Encap;
}

class UnionFind {
  private parent: number[] = [];
  add(): number { this.parent.push(this.parent.length); return this.parent.length - 1; }
  find(i: number): number { while (this.parent[i] !== i) i = this.parent[i] = this.parent[this.parent[i]]; return i; }
  union(a: number, b: number): void { this.parent[this.find(a)] = this.find(b); }
}

/** Journeys that share a 5-tuple in some namespace belong to one connection. */
export function buildLegs(journeys: Journey[]): Leg[] {
  const uf = new UnionFind();
  const byTuple = new Map<string, number>();
  journeys.forEach((j) => {
    const id = uf.add();
    for (const o of j.obs) {
      const k = tupleKey(o.netns, o.inner);
      const other = byTuple.get(k);
      if (other === undefined) byTuple.set(k, id);
      else uf.union(id, other);
    }
  });
  const groups = new Map<number, Journey[]>();
  journeys.forEach((j, i) => {
    const r = uf.find(i);
    const g = groups.get(r) ?? [];
    g.push(j);
    groups.set(r, g);
  });
  const legs: Leg[] = [];
  for (const js of groups.values()) {
    const syn = js.find((j) => j.obs[0].inner.tcp && (j.obs[0].inner.tcp.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN);
    const first = (syn ?? js[0]).obs;
    const ip = first[0].inner;
    legs.push({
      id: 0, proto: ip.tcp ? 'tcp' : ip.udp ? 'udp' : 'other', journeys: js,
      client: srcOf(ip), server: dstOf(ip), originNetns: first[0].netns, deliveredNetns: first[first.length - 1].netns,
      ...(syn ? { syn } : {}),
      first: syn ?? js[0], reused: !syn && ip.tcp !== undefined,
      encap: dportOf(ip) === HBONE_PORT || sportOf(ip) === HBONE_PORT ? 'hbone' : 'none',
    });
  }
  legs.sort((a, b) => (a.journeys[0].obs[0].ts < b.journeys[0].obs[0].ts ? -1 : 1));
  legs.forEach((l, i) => { l.id = i + 1; });
  return legs;
}

const startTs = (l: Leg): bigint => l.first.obs[0].ts;
const endTs = (l: Leg): bigint => l.first.obs[l.first.obs.length - 1].ts;

/** Re-anchors a leg on `j`: its addresses and endpoints as that packet saw them. */
function anchor(l: Leg, j: Journey): void {
  const ip = j.obs[0].inner;
  l.first = j;
  l.client = srcOf(ip);
  l.server = dstOf(ip);
  l.originNetns = j.obs[0].netns;
  l.deliveredNetns = j.obs[j.obs.length - 1].netns;
}

/** What a proxy's own log says about the request, to follow it through that proxy. */
export interface ProxyGuide {
  /** The proxy answered itself (a waypoint's 403): the request's path ends in it. */
  stop: boolean;
  /** The endpoint IP it sent the request to: its next connection goes there (over HBONE, :15008). */
  upstreamIp?: string;
}

const portOfEp = (ep: string): number => Number(/:(\d+)$/.exec(ep)?.[1] ?? -1);

/**
 * A connection delivered into a sidecar pod that the app, not the proxy, took in: one opened
 * inside that pod (the sidecar's hand-off on lo) to a port that is not the proxy's. The first
 * connection of a sidecar source pod is the app's own, captured to 15001, so never this.
 */
function deliveredToApp(l: Leg, isFirst: boolean, srcNetns: string): boolean {
  if (isFirst && l.originNetns === srcNetns) return false;
  return l.originNetns === l.deliveredNetns && !isSidecarPort(portOfEp(l.server));
}

/** The earliest connection `cur`'s proxy sends on after taking `cur` in, among those `ok` accepts. */
function nextLeg(legs: Leg[], chain: Leg[], cur: Leg, ok: (l: Leg) => boolean): { leg: Leg; j: Journey } | undefined {
  let best: { leg: Leg; j: Journey } | undefined;
  for (const l of legs) {
    if (chain.includes(l) || l.proto !== 'tcp' || !ok(l)) continue;
    const j = l.syn
      ? (l.syn.obs[0].netns === cur.deliveredNetns && l.syn.obs[0].ts >= endTs(cur) ? l.syn : undefined)
      : l.journeys.find((x) => x.obs[0].netns === cur.deliveredNetns && x.obs[0].ts >= endTs(cur)
        // A packet that leaves the proxy's namespace; or, on lo, a sidecar's pooled connection to its app (from 127.0.0.6).
        && (x.obs.length > 1 || (x.obs[0].ifname === 'lo' && x.obs[0].inner.src === SIDECAR_INBOUND_SOURCE)));
    if (j && (!best || j.obs[0].ts < best.j.obs[0].ts)) best = { leg: l, j };
  }
  return best;
}

/**
 * The request's path: the first TCP connection the source pod opens (to `dport` if given),
 * then, while it is delivered into a proxy, the next connection that proxy opens.
 */
export function chainLegs(legs: Leg[], points: Map<string, ObservationPoint>, srcNetns: string, dport?: number, guides: Map<string, ProxyGuide> = new Map()): Leg[] {
  const first = legs.find((l) => l.syn && l.originNetns === srcNetns && (dport === undefined || l.server.endsWith(`:${dport}`)))
    ?? legs.find((l) => l.syn && l.originNetns === srcNetns);
  if (first) anchor(first, first.syn!);
  if (!first) return [];
  const chain = [first];
  for (;;) {
    const cur = chain[chain.length - 1];
    const at = points.get(cur.deliveredNetns);
    if (!at || !ROLE_TRAITS[at.role].proxy) break;
    // In a sidecar pod, a connection that reached the app (not one of the proxy's ports) ends the path.
    if (at.role === 'sidecar' && deliveredToApp(cur, chain.length === 1, srcNetns)) break;
    const guide = guides.get(cur.deliveredNetns);
    // The proxy answered the request itself (a waypoint's 403): nothing it opened after is ours.
    if (guide?.stop) break;
    // The proxy's next connection: a new one (SYN) it opens, or one from its pool it sends on,
    // whichever carries the proxy's first packet after it took this connection in. Where the
    // proxy said where it sent the request (a waypoint's upstream_host), that connection first.
    const upstream = guide?.upstreamIp;
    const best = nextLeg(legs, chain, cur, (l) => upstream !== undefined && l.server.replace(/:\d+$/, '') === upstream)
      ?? nextLeg(legs, chain, cur, () => true);
    if (!best) break;
    if (!best.leg.syn) anchor(best.leg, best.j);
    chain.push(best.leg);
  }
  return chain;
}

// ---- hops ----

export interface RouteQuery {
  netns: string;
  src: string;
  dst: string;
  iif: string;
  /** The interface the packet actually left by (real name). */
  oif: string;
  proto?: string;
}

export interface Hop {
  index: number;
  leg: number;
  role: Role;
  name: string;
  where: string;
  netns: string;
  /** Learner name (`veth-sleep`) and the real one (`veth564908ee`). */
  interface: string;
  ifname: string;
  direction: Direction;
  /** Microseconds since the first packet of the trace. */
  tUs: number;
  ts: bigint;
  proto: string;
  src: string;
  dst: string;
  flags?: string;
  length: number;
  encap: Encap;
  vni?: number;
  outer?: { src: string; dst: string };
  what: string;
  /** A routing decision in a router namespace, explained later from `ip route get`. */
  route?: RouteQuery;
  /** The packet ended here: delivered to a local socket (TPROXY, or the app). */
  delivered?: boolean;
  reason?: string;
  frameIndex: number;
}

function describeFirst(ip: Ipv4, encap: Encap): string {
  const proto = ip.tcp ? 'TCP' : ip.udp ? 'UDP' : `proto ${ip.proto}`;
  const flags = ip.tcp ? ` ${tcpFlagNames(ip.tcp.flags)}` : '';
  const len = ip.tcp?.payload.length ?? ip.udp?.payload.length ?? 0;
  let extra = len ? `, ${len} bytes` : '';
  const alpn = ip.tcp ? tlsClientHelloAlpn(ip.tcp.payload) : undefined;
  if (alpn) extra = `, TLS ClientHello${alpn.length ? ` ALPN ${alpn.join(',')}` : ''}`;
  return `${encap === 'hbone' ? 'HBONE ' : ''}${srcOf(ip)} -> ${dstOf(ip)}  ${proto}${flags}${extra}`;
}

function describeNext(o: Observation, prev: Observation, point: ObservationPoint | undefined, points: Map<string, ObservationPoint>): string {
  if (o.vni !== undefined) {
    return `Geneve VNI ${o.vni} (outer ${o.outer.src} -> ${o.outer.dst}:${o.outer.udp?.dport ?? ''})`;
  }
  const parts: string[] = [];
  if (prev.vni !== undefined) parts.push('unwrapped from Geneve');
  if (dstOf(o.inner) !== dstOf(prev.inner)) parts.push(`destination rewritten (DNAT): ${srcOf(o.inner)} -> ${dstOf(o.inner)}`);
  if (srcOf(o.inner) !== srcOf(prev.inner)) parts.push(`source rewritten (SNAT): ${srcOf(o.inner)} -> ${dstOf(o.inner)}`);
  if (parts.length) return parts.join('; ');
  const role = point?.role;
  if (role === 'underlay') {
    const node = point && learnerInterface(point, o.ifname).replace(/^underlay-/, '');
    return o.dir === 'in' ? 'same packet, onto the underlay bridge' : `bridged towards ${node}`;
  }
  if (role === 'node') return o.dir === 'in' ? 'same packet, enters the node' : 'leaves the node';
  if (point && ROLE_TRAITS[point.role].proxy) return o.dir === 'in' ? `arrives at the ${point.role} pod` : `leaves the ${point.role} pod`;
  if (point && points.size) return o.dir === 'in' ? 'delivered to the pod' : 'leaves the pod';
  return 'same packet';
}

/** One journey as hops. `index` numbering starts at `firstIndex`. */
export function journeyHops(j: Journey, leg: Leg, points: Map<string, ObservationPoint>, t0: bigint, firstIndex: number): Hop[] {
  return j.obs.map((o, i) => {
    const point = points.get(o.netns);
    const prev = j.obs[i - 1];
    const encap = encapOf(o);
    const hop: Hop = {
      index: firstIndex + i, leg: leg.id,
      role: point?.role ?? 'pod', name: point?.name ?? o.netns, where: point ? whereLabel(point) : o.netns, netns: o.netns,
      interface: point ? learnerInterface(point, o.ifname) : o.ifname, ifname: o.ifname, direction: o.dir,
      tUs: Number((o.ts - t0) / 1000n), ts: o.ts,
      proto: o.inner.tcp ? 'tcp' : o.inner.udp ? 'udp' : String(o.inner.proto),
      src: srcOf(o.inner), dst: dstOf(o.inner),
      ...(o.inner.tcp ? { flags: tcpFlagNames(o.inner.tcp.flags) } : {}),
      length: o.inner.tcp?.payload.length ?? o.inner.udp?.payload.length ?? 0,
      encap, ...(o.vni !== undefined ? { vni: o.vni, outer: { src: srcOf(o.outer), dst: dstOf(o.outer) } } : {}),
      what: prev ? describeNext(o, prev, point, points) : describeFirst(o.inner, encap),
      frameIndex: o.frameIndex,
    };
    if (prev && point && ROLE_TRAITS[point.role].router && prev.netns === o.netns && prev.dir === 'in' && o.dir === 'out' && o.vni === undefined) {
      hop.route = { netns: o.netns, src: o.inner.src, dst: o.inner.dst, iif: prev.ifname, oif: o.ifname, proto: o.inner.tcp ? 'tcp' : o.inner.udp ? 'udp' : String(o.inner.proto) };
    }
    if (i === j.obs.length - 1 && o.dir === 'in') hop.delivered = true;
    return hop;
  });
}

export interface PathGroup {
  leg: number;
  /** client->server or server->client. */
  direction: 'request' | 'reply';
  packets: number;
  flags: string[];
  bytes: number;
  firstTUs: number;
  /** The path of the first packet of the group. */
  hops: Hop[];
  /** `netns:iface > netns:iface ...` */
  signature: string;
}

export interface TraceLeg {
  id: number;
  /** An HBONE tunnel's :authority and identities, as the proxies at its ends logged them. */
  tunnel?: TunnelFacts;
  proto: string;
  client: string;
  server: string;
  encap: Encap;
  origin: string;
  delivered: string;
  packets: number;
  reused: boolean;
  alpn?: string[];
  /** Istio mTLS between sidecars (TLS straight to the app port, ALPN istio-peer-exchange / istio). */
  istioMtls?: boolean;
  /** In a sidecar pod: the app opened this connection (captured to 15001), or took it in (from 127.0.0.6). */
  app?: 'opened' | 'took-in';
}

export interface Reconstruction {
  t0: bigint;
  legs: TraceLeg[];
  /** The first packet of each connection of the request, hop by hop. */
  hops: Hop[];
  /** Every other packet of those connections, grouped by the path it took. */
  later: PathGroup[];
  /** Connections seen that are not part of the request (DNS lookups, ...). */
  other: TraceLeg[];
  /** What the L7 proxies on the path decided, each placed after the hop that brought the request in. */
  decisions: PlacedDecision[];
}

export interface PlacedDecision extends L7Decision {
  /** The connection that brought the request into the proxy. */
  leg: number;
  /** The decision happened after this hop (the request's arrival in the proxy). */
  afterHop: number;
}

export interface ProxyLogs {
  netns: string;
  /** `ztunnel node-a`, `waypoint bookinfo-reviews`. */
  where: string;
  lines: LogLine[];
  /** The identity this proxy presents when it opens HBONE (a waypoint's own; a ztunnel's vary per client). */
  identity?: string;
}

export interface ReconstructOptions {
  /** The L7 proxies' decisions for the trace's request (at most one per proxy netns). */
  decisions?: L7Decision[];
  /** The proxies' log lines of the trace's window, for the HBONE tunnels' identities. */
  proxyLogs?: ProxyLogs[];
  /** The SPIFFE identity of the workload at an IP: what the ztunnel answering its :15008 presents. */
  workloadIdentity?: (ip: string) => string | undefined;
}

function traceLeg(l: Leg, points: Map<string, ObservationPoint>): TraceLeg {
  const label = (ns: string): string => { const p = points.get(ns); return p ? whereLabel(p) : ns; };
  let alpn: string[] | undefined;
  for (const j of l.journeys) {
    const a = j.obs[0].inner.tcp && tlsClientHelloAlpn(j.obs[0].inner.tcp.payload);
    if (a) { alpn = a; break; }
  }
  return {
    id: l.id, proto: l.proto, client: l.client, server: l.server, encap: l.encap,
    origin: label(l.originNetns), delivered: label(l.deliveredNetns), packets: l.journeys.length, reused: l.reused, ...(alpn ? { alpn } : {}),
    ...(l.encap !== 'hbone' && alpn?.some((a) => a === 'istio-peer-exchange' || a.startsWith('istio')) ? { istioMtls: true } : {}),
  };
}

/** Where a proxy sent the request: a sidecar's HBONE tunnel end (a waypoint's address) when it names one, else upstream_host. */
function upstreamIpOf(d: L7Decision): string | undefined {
  const hbone = d.upstreamTransport && /^hbone (\S+)/.exec(d.upstreamTransport);
  return (hbone ? hbone[1] : d.upstreamHost)?.replace(/:\d+$/, '');
}

export function reconstruct(observations: Observation[], pointList: ObservationPoint[], srcNetns: string, dport?: number, opts: ReconstructOptions = {}): Reconstruction {
  const points = new Map(pointList.map((p) => [p.netns, p]));
  const journeys = buildJourneys(observations);
  const legs = buildLegs(journeys);
  const guides = new Map<string, ProxyGuide>((opts.decisions ?? []).map((d) => [d.netns, {
    stop: d.localReply, ...(upstreamIpOf(d) ? { upstreamIp: upstreamIpOf(d) } : {}),
  }]));
  const chain = chainLegs(legs, points, srcNetns, dport, guides);
  // Number the request's connections 1..n in path order, everything else after them.
  [...chain, ...legs.filter((l) => !chain.includes(l))].forEach((l, i) => { l.id = i + 1; });
  const t0 = chain.length ? startTs(chain[0]) : journeys[0]?.obs[0].ts ?? 0n;
  const hops: Hop[] = [];
  const later: PathGroup[] = [];
  for (const leg of chain) {
    hops.push(...journeyHops(leg.first, leg, points, t0, hops.length + 1));
    const groups = new Map<string, PathGroup>();
    for (const j of leg.journeys) {
      if (j === leg.first) continue;
      const first = j.obs[0].inner;
      const direction = srcOf(first) === leg.client ? 'request' : 'reply';
      const signature = j.obs.map((o) => `${o.netns}:${o.ifname}:${o.vni ?? ''}`).join('>');
      const k = `${direction}|${signature}`;
      let g = groups.get(k);
      if (!g) {
        g = { leg: leg.id, direction, packets: 0, flags: [], bytes: 0, firstTUs: Number((j.obs[0].ts - t0) / 1000n), hops: journeyHops(j, leg, points, t0, 1), signature };
        groups.set(k, g);
      }
      g.packets++;
      g.bytes += first.tcp?.payload.length ?? first.udp?.payload.length ?? 0;
      const f = first.tcp ? tcpFlagNames(first.tcp.flags) : first.proto === 17 ? 'UDP' : String(first.proto);
      if (!g.flags.includes(f)) g.flags.push(f);
    }
    later.push(...groups.values());
  }
  later.sort((a, b) => a.firstTUs - b.firstTUs);
  // A sidecar pod holds the app and its proxy: the app's own hops are named for the pod, the rest for the sidecar.
  const appSide = new Map<number, { netns: string; app: 'opened' | 'took-in' }>();
  chain.forEach((l, i) => {
    if (i === 0 && points.get(srcNetns)?.role === 'sidecar') appSide.set(l.id, { netns: srcNetns, app: 'opened' });
    else if (points.get(l.deliveredNetns)?.role === 'sidecar' && deliveredToApp(l, i === 0, srcNetns)) appSide.set(l.id, { netns: l.deliveredNetns, app: 'took-in' });
  });
  for (const h of [...hops, ...later.flatMap((g) => g.hops)]) {
    const a = appSide.get(h.leg);
    if (!a || h.netns !== a.netns) continue;
    h.role = 'pod';
    h.where = `pod ${h.name}`;
    if (a.app === 'took-in' && h.delivered) h.what = `${h.what}, delivered to the app`;
  }
  const decisions: PlacedDecision[] = [];
  for (const d of opts.decisions ?? []) {
    const into = chain.find((l) => l.deliveredNetns === d.netns);
    const arrival = into && hops.filter((h) => h.leg === into.id).at(-1);
    if (into && arrival) decisions.push({ ...d, leg: into.id, afterHop: arrival.index });
  }
  const logs = opts.proxyLogs ?? [];
  return {
    t0,
    legs: chain.map((l, i) => {
      const t = traceLeg(l, points);
      // A pooled Istio mTLS connection opened before the trace shows no handshake on the wire;
      // the sidecar that sent the request over it says so in its log (upstream_transport).
      if (!t.istioMtls && l.encap !== 'hbone' && l.reused && (opts.decisions ?? []).some((d) =>
        d.netns === l.originNetns && d.upstreamTransport === 'istio-mtls' && d.upstreamHost === l.server)) t.istioMtls = true;
      const a = appSide.get(l.id);
      if (a) {
        t.app = a.app;
        const app = `pod ${points.get(a.netns)?.name ?? a.netns} (the app)`;
        if (a.app === 'opened') t.origin = app;
        else t.delivered = app;
      }
      if (t.istioMtls) {
        const facts = tunnelFacts(logs, { client: l.client, server: l.server, istioMtls: true });
        return facts ? { ...t, tunnel: facts } : t;
      }
      if (l.encap !== 'hbone') return t;
      // A ztunnel keeps the client's original destination as the authority of its tunnel.
      const prev = chain[i - 1];
      const facts = tunnelFacts(logs, { client: l.client, server: l.server, ...(prev && prev.encap === 'none' ? { originalDst: prev.server } : {}) });
      const opener = logs.find((x) => x.netns === l.originNetns);
      const tunnel: TunnelFacts | undefined = facts || opener?.identity ? { source: [], ...facts } : undefined;
      if (tunnel && !tunnel.clientIdentity && opener?.identity) {
        tunnel.clientIdentity = opener.identity;
        tunnel.source.push(`${opener.where}'s own identity`);
      }
      const expected = opts.workloadIdentity?.(l.server.replace(/:\d+$/, ''));
      if (tunnel && !tunnel.serverIdentity && expected) {
        tunnel.serverIdentity = expected;
        tunnel.source.push('the destination workload\'s identity');
      }
      return tunnel ? { ...t, tunnel } : t;
    }),
    hops, later,
    other: legs.filter((l) => !chain.includes(l)).map((l) => traceLeg(l, points)),
    decisions,
  };
}
