// `lab trace` end to end: snapshot rule counters, capture in every namespace of the lab,
// make the one request, stop, reconstruct the hops, explain them, and write the captures.
import { insideDir } from '../util/inside-dir.js';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { DEFAULT_TRUST_DOMAIN, formatSpiffe } from '../mesh/identity.js';
import { join } from 'node:path';
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import { netnsExists } from '../host/netns.js';
import { startCaptures } from './capture.js';
import { observationsFrom, reconstruct, type Hop, type NetnsFrames, type ProxyLogs, type RouteQuery } from './hops.js';
import { decisionFrom, matchDecision, originalDestination, parseLogLines, waypointIdentityFrom } from './proxy-logs.js';
import { inboundCapture, isSidecarPort, loopbackToApp, outboundRedirect, proxyOwnConnection, SIDECAR_INBOUND_SOURCE, SIDECAR_OUTBOUND_PORT } from './sidecar.js';
import { readCaptureFile, writePcap, writePcapng, type PcapngInterface } from './pcap.js';
import {
  describeDelivery, describeRoute, explainRoute, movedRules, rulesForHop, ruleText, snapshotCounters,
  type IpRule, type MovedRule, type RouteExplanation,
} from './reasons.js';
import { makeRequest, type RequestTarget } from './request.js';
import { learnerInterface, observationPoints, whereLabel, type ObservationPoint } from './roles.js';
import type { ReportHop, TraceReport } from './report.js';
import { copyKeyLog, keyLogFiles } from './keylog.js';
import { applyWireFacts, tunnelsOnWire } from './wire-tunnels.js';

export interface TraceOptions {
  plan: LabPlan;
  source: PlannedPod;
  target: RequestTarget;
  /** Keep per-hop pcaps, a merged pcapng and keys.log here. */
  outDir?: string;
  /** How long to keep capturing after the request returns. */
  settleMs?: number;
  /** The proxies' log files (ztunnels, waypoints): what they decided for the request. */
  proxyLogs?: { netns: string; file: string }[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The DNAT rule that rewrote a packet's destination to `dst`, if one moved. */
function natReason(hop: Hop, moved: MovedRule[]): string | undefined {
  if (!hop.what.includes('DNAT')) return undefined;
  const r = moved.find((m) => m.table === 'nat' && m.spec.includes(`--to-destination ${hop.dst}`));
  return r ? `kube-proxy DNAT (nat ${r.chain})` : 'DNAT';
}

export async function runTrace(opts: TraceOptions): Promise<TraceReport> {
  const { plan, source, target } = opts;
  const points = observationPoints(plan).filter((p) => netnsExists(p.netns));
  const byNetns = new Map(points.map((p) => [p.netns, p]));
  const netnsList = points.map((p) => p.netns);
  const work = mkdtempSync(join(tmpdir(), 'lab-trace-'));
  const startedAt = new Date().toISOString();
  try {
    const before = await snapshotCounters(netnsList);
    const running = await startCaptures(netnsList, work);
    // With an L7 proxy on the way, the request carries an id of ours, so the proxy's access log
    // line is matched to it exactly (the waypoint keeps a client's x-request-id).
    const requestId = target.kind === 'url' && points.some((p) => p.role === 'waypoint' || p.role === 'sidecar') ? `lab-trace-${randomUUID()}` : undefined;
    const fromMs = Date.now();
    let request;
    try {
      request = await makeRequest(source.netns, target, { ...(requestId ? { headers: { 'x-request-id': requestId } } : {}) });
      await sleep(opts.settleMs ?? 400);
    } finally {
      await running.stop();
    }
    const toMs = Date.now();
    const after = await snapshotCounters(netnsList);
    const moved = new Map(netnsList.map((ns) => [ns, movedRules(before.get(ns) ?? [], after.get(ns) ?? [])]));

    const captures: NetnsFrames[] = running.captures.map((c) => ({
      netns: c.netns, interfaces: c.interfaces, frames: readCaptureFile(new Uint8Array(readFileSync(c.file))).frames,
    }));
    const proxyLogs = readProxyLogs(opts.proxyLogs ?? [], byNetns, fromMs - 1000);
    const decisions = proxyLogs.flatMap((l) => {
      // The L7 proxies: waypoints, and sidecars (their outbound and inbound request lines).
      const role = byNetns.get(l.netns)?.role;
      if ((role !== 'waypoint' && role !== 'sidecar') || target.kind !== 'url') return [];
      const all = l.lines.flatMap((x) => decisionFrom(x, l.where, l.netns) ?? []);
      const d = matchDecision(all, { ...(requestId ? { requestId } : {}), method: target.method ?? 'GET', path: target.path, fromMs, toMs: toMs + 1000 });
      return d ? [d] : [];
    });
    const rec = reconstruct(observationsFrom(captures), points, source.netns, target.port, { decisions, proxyLogs, workloadIdentity: (ip) => {
      const pod = plan.pods.find((p) => p.ip === ip && p.role === 'workload');
      return pod && formatSpiffe({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: pod.namespace, serviceAccount: pod.serviceAccount });
    } });

    // Tunnels opened during the trace: the certificates each end presented and the CONNECT, from the wire.
    const fresh = rec.legs.filter((l) => (l.encap === 'hbone' || l.istioMtls) && !l.reused);
    const keys = fresh.length ? copyKeyLog(plan, work) : undefined;
    if (keys) {
      const byOrigin = new Map<string, number[]>();
      const tlsPorts = new Map<string, number[]>();
      for (const l of fresh) {
        const ns = points.find((p) => whereLabel(p) === l.origin)?.netns;
        const port = Number(l.client.replace(/^.*:/, ''));
        if (ns) byOrigin.set(ns, [...(byOrigin.get(ns) ?? []), port]);
        if (ns && l.istioMtls) tlsPorts.set(ns, [...(tlsPorts.get(ns) ?? []), Number(l.server.replace(/^.*:/, ''))]);
      }
      for (const [ns, ports] of byOrigin) {
        const c = running.captures.find((x) => x.netns === ns);
        if (c) applyWireFacts(rec.legs, await tunnelsOnWire(c.file, keys, ports, tlsPorts.get(ns)));
      }
    }

    // Inside a sidecar pod: which of istio-cni's nat rules took the connection where it went.
    const firstOfLeg = new Set(rec.legs.map((l) => rec.hops.find((h) => h.leg === l.id)?.index));
    const sidecarReason = (h: Hop): string | undefined => {
      const m = moved.get(h.netns) ?? [];
      const port = Number(h.dst.replace(/^.*:/, ''));
      const leg = rec.legs.find((l) => l.id === h.leg);
      if (h.ifname === 'lo' && port === SIDECAR_OUTBOUND_PORT && firstOfLeg.has(h.index)) {
        const logs = proxyLogs.find((l) => l.netns === h.netns)?.lines ?? [];
        // The de-NATed replies on lo carry the address the app asked for, as does the sidecar's log.
        const orig = originalDestination(logs, h.src) ?? rec.other.find((o) => o.server === h.src && o.proto === 'tcp')?.client;
        return outboundRedirect(m, orig);
      }
      if (h.ifname === 'lo' && h.src.startsWith(`${SIDECAR_INBOUND_SOURCE}:`)) return loopbackToApp(m, h.src, leg?.reused);
      if (h.delivered && h.ifname !== 'lo' && leg?.app !== 'took-in') return inboundCapture(m, h.dst, leg?.reused) ?? (isSidecarPort(port) ? undefined : 'delivered to the app port, no nat rule moved');
      if (h.direction === 'out' && h.ifname !== 'lo' && firstOfLeg.has(h.index)) return proxyOwnConnection(m, leg?.reused);
      return undefined;
    };

    const ruleCache = new Map<string, IpRule[]>();
    const routeCache = new Map<string, Promise<RouteExplanation | undefined>>();
    const explain = async (h: Hop): Promise<ReportHop> => {
      const m = moved.get(h.netns) ?? [];
      const point = byNetns.get(h.netns);
      const why: string[] = [];
      const nat = natReason(h, m);
      if (nat) why.push(nat);
      if (h.route) {
        const q: RouteQuery = h.route;
        const k = `${q.netns}|${q.src}|${q.dst}|${q.iif}|${q.oif}`;
        if (!routeCache.has(k)) routeCache.set(k, explainRoute(q, m, ruleCache));
        const e = await routeCache.get(k)!;
        if (e) why.push(describeRoute(e, (real) => (point ? learnerInterface(point, real) : real)));
      }
      if (h.delivered) {
        const d = describeDelivery(h, m);
        if (d) why.push(d);
        else if (point?.role === 'waypoint' && h.encap === 'hbone') why.push(`the waypoint's own HBONE listener (${h.dst}): no redirection, a waypoint is never captured`);
      }
      if (point?.role === 'sidecar') {
        const s = sidecarReason(h);
        if (s) why.push(s);
      }
      const rules = rulesForHop(h, m).map((r) => `${ruleText(r)} (+${r.delta})`);
      const { ts: _ts, route: _route, ...rest } = h;
      return { ...rest, ...(why.length ? { reason: why.join('; ') } : {}), ...(rules.length ? { rules } : {}) };
    };

    const report: TraceReport = {
      lab: plan.lab,
      source: { pod: source.key, ip: source.ip, netns: source.netns },
      target: target.text,
      request,
      ...(requestId ? { requestId } : {}),
      startedAt,
      legs: rec.legs,
      decisions: rec.decisions,
      hops: await Promise.all(rec.hops.map(explain)),
      later: await Promise.all(rec.later.map(async (g) => ({ ...g, hops: await Promise.all(g.hops.map(explain)) }))),
      other: rec.other,
      counters: points.map((p) => ({ netns: p.netns, where: whereLabel(p), rules: moved.get(p.netns) ?? [] })).filter((c) => c.rules.length),
      notes: [],
    };
    const dropped = running.captures.filter((c) => (c.droppedByKernel ?? 0) > 0);
    if (dropped.length) {
      report.notes.push(`tcpdump lost packets (kernel ring full) in ${dropped.map((c) => `${c.netns}: ${c.droppedByKernel}`).join(', ')}; some hops may be missing`);
    }
    for (const p of points.filter((x) => x.role === 'waypoint')) {
      if (rec.hops.some((h) => h.netns === p.netns) && !rec.decisions.some((d) => d.netns === p.netns)) {
        report.notes.push(target.kind === 'tcp'
          ? `${whereLabel(p)} proxied this connection as TCP: no HTTP request, so no route rule; it picked the endpoint at random among those it serves`
          : `the request went through ${whereLabel(p)}, but its log has no request line for it (\`lab logs ${p.name}\`)`);
      }
    }
    // A path that ends in a sidecar (not its app): the proxy took the connection in and opened nothing.
    const lastLeg = rec.legs.at(-1);
    const endsAt = lastLeg && points.find((p) => whereLabel(p) === lastLeg.delivered);
    if (endsAt?.role === 'sidecar' && !rec.decisions.some((d) => d.netns === endsAt.netns && d.localReply)) {
      report.notes.push(`${whereLabel(endsAt)} took the connection in and opened none of its own during the trace${target.kind === 'tcp'
        ? ': to a sidecar an HTTP Service port carries HTTP, and the trace\'s TCP probe is not an HTTP request (trace a URL instead)'
        : ` (\`lab logs sidecar-${endsAt.name}\` says why)`}`);
    }
    if (plan.nodes.length && keyLogFiles(plan).configured.length === 0 && points.some((p) => p.role === 'ztunnel')) {
      report.notes.push('the ztunnels log no TLS keys (no keyLogFile in their config), so HBONE stays encrypted in the captures');
    }
    if (opts.outDir) {
      report.files = writeCaptures(plan, opts.outDir, captures, byNetns, rec.hops);
      writeFileSync(insideDir(opts.outDir, 'trace.json'), JSON.stringify(report, null, 2));
    }
    return report;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The proxies' log lines since `sinceMs`, with what each proxy is (and, for a waypoint, the identity it presents). */
function readProxyLogs(files: { netns: string; file: string }[], points: Map<string, ObservationPoint>, sinceMs: number): ProxyLogs[] {
  const out: ProxyLogs[] = [];
  for (const f of files) {
    const point = points.get(f.netns);
    if (!point) continue;
    let text: string;
    try {
      text = readFileSync(f.file, 'utf8');
    } catch {
      continue;
    }
    const all = parseLogLines(text);
    const identity = point.role === 'waypoint' ? waypointIdentityFrom(all) : point.role === 'sidecar' ? sidecarIdentityFrom(all) : undefined;
    out.push({ netns: f.netns, where: whereLabel(point), lines: all.filter((l) => l.time >= sinceMs), ...(identity ? { identity } : {}) });
  }
  return out;
}

const fileSafe = (s: string): string => s.replace(/[^A-Za-z0-9_.-]+/g, '-');

/** Per-(netns, interface) pcaps, one merged pcapng with named interfaces and hop comments, and keys.log. */
function writeCaptures(plan: LabPlan, dir: string, captures: NetnsFrames[], points: Map<string, ObservationPoint>, hops: Hop[]): NonNullable<TraceReport['files']> {
  mkdirSync(dir, { recursive: true });
  const firstHop = new Map<string, number>();
  for (const h of hops) if (!firstHop.has(`${h.netns}|${h.ifname}`)) firstHop.set(`${h.netns}|${h.ifname}`, h.index);
  const hopOfFrame = new Map<string, Hop>();
  for (const h of hops) hopOfFrame.set(`${h.netns}|${h.frameIndex}`, h);

  const interfaces: PcapngInterface[] = [];
  const ifaceId = new Map<string, number>();
  const merged: Parameters<typeof writePcapng>[1] = [];
  const perIface = new Map<string, { linktype: number; frames: { ts: bigint; data: Uint8Array; origLen: number }[] }>();
  for (const c of captures) {
    const point = points.get(c.netns);
    c.frames.forEach((f, i) => {
      // SLL2 keeps the interface index at bytes 4..7 (big-endian).
      const ifindex = f.linktype === 276 && f.data.length >= 8 ? new DataView(f.data.buffer, f.data.byteOffset).getUint32(4) : -1;
      const ifname = c.interfaces.get(ifindex) ?? 'any';
      const key = `${c.netns}|${ifname}`;
      let id = ifaceId.get(key);
      if (id === undefined) {
        id = interfaces.length;
        ifaceId.set(key, id);
        const learner = point ? learnerInterface(point, ifname) : ifname;
        interfaces.push({ linktype: f.linktype, name: `${point ? whereLabel(point).replace(' ', ':') : c.netns}:${learner}`, description: `${c.netns} ${ifname}` });
      }
      const hop = hopOfFrame.get(`${c.netns}|${i}`);
      merged.push({ ts: f.ts, data: f.data, origLen: f.origLen, interfaceId: id, ...(hop ? { comment: `hop ${hop.index}: ${hop.where} ${hop.interface}` } : {}) });
      const g = perIface.get(key) ?? { linktype: f.linktype, frames: [] };
      g.frames.push(f);
      perIface.set(key, g);
    });
  }
  merged.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  const perHop: string[] = [];
  const keys = [...perIface.keys()].sort((a, b) => (firstHop.get(a) ?? 999) - (firstHop.get(b) ?? 999));
  for (const key of keys) {
    const [netns, ifname] = key.split('|');
    const point = points.get(netns);
    const n = firstHop.get(key);
    const name = `${n !== undefined ? String(n).padStart(2, '0') : 'xx'}-${fileSafe(point ? whereLabel(point) : netns)}-${fileSafe(point ? learnerInterface(point, ifname) : ifname)}.pcap`;
    const g = perIface.get(key)!;
    writeFileSync(insideDir(dir, name), writePcap(g.linktype, g.frames));
    perHop.push(name);
  }
  const mergedFile = insideDir(dir, 'merged.pcapng');
  writeFileSync(mergedFile, writePcapng(interfaces, merged));
  const keyLog = copyKeyLog(plan, dir);
  return { dir, merged: 'merged.pcapng', perHop, ...(keyLog ? { keyLog: 'keys.log' } : {}) };
}

/** A sidecar's identity, from the line it logs when it is ready. */
function sidecarIdentityFrom(lines: { msg: string; [k: string]: unknown }[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i].msg === 'sidecar ready' && typeof lines[i].identity === 'string') return lines[i].identity as string;
  }
  return undefined;
}
