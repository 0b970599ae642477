// The lab drawn as boxes (nodes holding their pods and ztunnel, the underlay below) with the
// interfaces as labelled ports, and a trace as numbered arrows between those ports, plus a
// numbered list of the steps in plain words. Used by `lab trace --svg/--html` and `lab graph --svg`.
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import { podVethName, waypointGateway } from './roles.js';
import type { PlacedDecision } from './hops.js';
import type { ReportHop, TraceReport } from './report.js';
import { plainStep } from './narrate.js';

interface Port { x: number; y: number; label: string }

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const POD_W = 130;
const WP_W = 180;
const ZT_W = 220;
const GAP = 22;
const NODE_TOP = 70;
const POD_TOP = 120;
const POD_H = 84;
const VETH_Y = 300;
const NODE_BOTTOM = 420;
const UNDERLAY_Y = 490;
const LEG_COLORS = ['#1f6fd1', '#d9730d', '#2e9e44', '#9c3fc9', '#c43d5a'];
const GENEVE = '#8e44ad';

export interface Layout {
  width: number;
  height: number;
  body: string[];
  /** Drawn over the arrows, so labels stay readable. */
  portPills: string[];
  ports: Map<string, Port>;
  /** Waypoint pods' boxes by netns, where their decision is written. */
  boxes: Map<string, { x: number; y: number; w: number }>;
}

function pill(p: Port, body: string[], fill = '#ffffff', stroke = '#555'): void {
  const w = Math.max(34, p.label.length * 6.4 + 12);
  body.push(`<rect x="${p.x - w / 2}" y="${p.y - 9}" width="${w}" height="18" rx="9" fill="${fill}" stroke="${stroke}"/>`,
    `<text x="${p.x}" y="${p.y + 4}" class="port">${esc(p.label)}</text>`);
}

/** Boxes and ports of the lab; `ports` maps `netns|ifname` to where an arrow should point. */
export function layoutLab(plan: LabPlan): Layout {
  const body: string[] = [];
  const ports = new Map<string, Port>();
  const portAt = (netns: string, ifname: string, x: number, y: number, label: string): Port => {
    const p = { x, y, label };
    ports.set(`${netns}|${ifname}`, p);
    return p;
  };
  const pills: { p: Port; fill?: string; stroke?: string }[] = [];
  const boxes = new Map<string, { x: number; y: number; w: number }>();
  let x = 30;
  const nodeX: { name: string; x: number; w: number; eth0: Port }[] = [];
  for (const n of plan.nodes) {
    const pods = plan.pods.filter((p) => p.node === n.name);
    const zt = pods.find((p) => p.role === 'ztunnel');
    const others = pods.filter((p) => p !== zt);
    const podW = (p: PlannedPod): number => (p.role === 'waypoint' ? WP_W : POD_W);
    const w = Math.max(440, others.reduce((a, p) => a + podW(p) + GAP, 0) + (zt ? ZT_W + GAP : 0) + GAP);
    body.push(`<rect x="${x}" y="${NODE_TOP}" width="${w}" height="${NODE_BOTTOM - NODE_TOP}" rx="14" class="node"/>`,
      `<text x="${x + 14}" y="${NODE_TOP + 22}" class="title">node ${esc(n.name)}</text>`,
      `<text x="${x + 14}" y="${NODE_TOP + 38}" class="sub">eth0 ${n.ip} · pods ${n.podCidr} · routing, ip rules and iptables live here</text>`);
    let px = x + GAP;
    const drawPod = (p: PlannedPod, pw: number): void => {
      const isZt = p.role === 'ztunnel';
      const gw = waypointGateway(p);
      const mode = isZt ? 'ztunnel (L4 proxy)' : gw ? 'waypoint (L7 proxy)' : p.role === 'workload' && p.mode === 'sidecar' ? 'app + sidecar' : p.role === 'workload' ? `mode ${p.mode}` : p.role;
      const cls = isZt ? 'zt' : gw ? 'wp' : p.mode === 'ambient' && p.role === 'workload' ? 'amb' : 'pod';
      if (gw) boxes.set(p.netns, { x: px, y: POD_TOP, w: pw });
      body.push(`<rect x="${px}" y="${POD_TOP}" width="${pw}" height="${POD_H}" rx="8" class="${cls}"/>`,
        `<text x="${px + pw / 2}" y="${POD_TOP + 22}" class="podname">${esc(gw ?? p.name)}</text>`,
        `<text x="${px + pw / 2}" y="${POD_TOP + 38}" class="sub mid">${p.ip}</text>`,
        `<text x="${px + pw / 2}" y="${POD_TOP + 53}" class="sub mid">${esc(mode)}</text>`);
      const bottom = POD_TOP + POD_H;
      const vethLabel = podVethName(plan, p);
      if (p.role === 'workload' && p.mode === 'sidecar') {
        // The app and its proxy share the pod's network namespace: the sidecar is a box inside the pod, lo between them.
        const sy = POD_TOP + 58;
        body.push(`<rect x="${px + 40}" y="${sy}" width="${pw - 46}" height="20" rx="5" class="sc"/>`,
          `<text x="${px + 40 + (pw - 46) / 2}" y="${sy + 14}" class="sub mid">sidecar 1337</text>`);
        pills.push({ p: portAt(p.netns, 'lo', px + 22, sy + 10, 'lo') });
      }
      if (isZt) {
        const e = portAt(p.netns, 'eth0', px + pw / 2, bottom, 'eth0');
        const po = portAt(p.netns, 'pistioout', px + 40, bottom, 'pistioout');
        const pi = portAt(p.netns, 'pistioin', px + pw - 40, bottom, 'pistioin');
        const v = portAt(n.netns, p.hostVeth, e.x, VETH_Y, vethLabel);
        const io = portAt(n.netns, 'istioout', po.x, VETH_Y - 40, 'istioout');
        const ii = portAt(n.netns, 'istioin', pi.x, VETH_Y - 40, 'istioin');
        body.push(`<line x1="${e.x}" y1="${e.y}" x2="${v.x}" y2="${v.y}" class="wire"/>`,
          `<line x1="${po.x}" y1="${po.y}" x2="${io.x}" y2="${io.y}" class="tunnel"/>`,
          `<line x1="${pi.x}" y1="${pi.y}" x2="${ii.x}" y2="${ii.y}" class="tunnel"/>`,
          `<text x="${px + pw / 2}" y="${VETH_Y - 62}" class="sub mid">Geneve tunnels</text>`);
        pills.push({ p: e }, { p: po, fill: '#f3e8fa', stroke: GENEVE }, { p: pi, fill: '#f3e8fa', stroke: GENEVE }, { p: v }, { p: io, fill: '#f3e8fa', stroke: GENEVE }, { p: ii, fill: '#f3e8fa', stroke: GENEVE });
      } else {
        const e = portAt(p.netns, 'eth0', px + pw / 2, bottom, 'eth0');
        const v = portAt(n.netns, p.hostVeth, e.x, VETH_Y, vethLabel);
        body.push(`<line x1="${e.x}" y1="${e.y}" x2="${v.x}" y2="${v.y}" class="wire"/>`);
        pills.push({ p: e }, { p: v });
      }
      px += pw + GAP;
    };
    for (const p of others) drawPod(p, podW(p));
    if (zt) drawPod(zt, ZT_W);
    const eth0 = portAt(n.netns, 'eth0', x + w / 2, NODE_BOTTOM, 'eth0');
    pills.push({ p: eth0 });
    nodeX.push({ name: n.name, x, w, eth0 });
    x += w + 40;
  }
  const width = Math.max(x - 10, 600);
  body.push(`<rect x="30" y="${UNDERLAY_Y}" width="${width - 60}" height="60" rx="10" class="underlay"/>`,
    `<text x="44" y="${UNDERLAY_Y + 38}" class="title">underlay</text>`,
    `<text x="130" y="${UNDERLAY_Y + 38}" class="sub">bridge ${esc(plan.underlay.bridge)} · ${plan.underlay.cidr} (the network between nodes)</text>`);
  for (const n of nodeX) {
    const node = plan.nodes.find((q) => q.name === n.name)!;
    const u = portAt(plan.underlay.netns, node.underlayVeth, n.eth0.x, UNDERLAY_Y, `underlay-${n.name}`);
    body.push(`<line x1="${n.eth0.x}" y1="${n.eth0.y}" x2="${u.x}" y2="${u.y}" class="wire"/>`);
    pills.push({ p: u });
  }
  const portPills: string[] = [];
  for (const s of pills) pill(s.p, portPills, s.fill, s.stroke);
  return { width, height: UNDERLAY_Y + 80, body, portPills, ports, boxes };
}

const STYLE = `
  text { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; }
  .title { font-size: 15px; font-weight: bold; fill: #222; }
  .sub { font-size: 11px; fill: #555; }
  .mid { text-anchor: middle; }
  .podname { font-size: 13px; font-weight: bold; text-anchor: middle; fill: #222; }
  .port { font-size: 10.5px; text-anchor: middle; fill: #222; }
  .node { fill: #f7f9fc; stroke: #8a99ad; stroke-width: 1.5; }
  .pod { fill: #ffffff; stroke: #999; }
  .amb { fill: #eaf7e8; stroke: #5aa05a; }
  .zt { fill: #e6efff; stroke: #4a78c2; }
  .wp { fill: #fff3e0; stroke: #d9730d; }
  .sc { fill: #e6efff; stroke: #4a78c2; }
  .verdict { font-size: 10px; text-anchor: middle; fill: #8a4a00; font-weight: bold; }
  .underlay { fill: #eeeeee; stroke: #999; }
  .wire { stroke: #999; stroke-width: 2; }
  .tunnel { stroke: ${GENEVE}; stroke-width: 2; stroke-dasharray: 5 3; }
  .step { font-size: 12px; fill: #222; }
  .why { font-size: 10.5px; fill: #666; }
  .num { font-size: 11px; font-weight: bold; fill: #fff; text-anchor: middle; }
`;

function wrap(text: string, max: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if ((line + ' ' + w).trim().length > max && line) { out.push(line); line = w; } else line = `${line} ${w}`.trim();
  }
  if (line) out.push(line);
  return out;
}

/** The lab, and with a report the request's first packets as numbered arrows plus the steps in words. */
export function renderTraceSvg(plan: LabPlan, r?: TraceReport): string {
  const lay = layoutLab(plan);
  const body = [...lay.body];
  const arrows: string[] = [];
  const marks: string[] = [];
  const hops = r?.hops ?? [];
  const placed = new Map<string, number>();
  const pos = (h: ReportHop): Port | undefined => lay.ports.get(`${h.netns}|${h.ifname}`);
  hops.forEach((h, i) => {
    const here = pos(h);
    const prev = hops[i - 1];
    const from = prev && prev.leg === h.leg ? pos(prev) : undefined;
    const color = h.encap === 'geneve' ? GENEVE : LEG_COLORS[(h.leg - 1) % LEG_COLORS.length];
    if (from && here && (from.x !== here.x || from.y !== here.y)) {
      // Bend every arrow a little, alternately, so back-and-forth trips stay apart.
      const mx = (from.x + here.x) / 2 + (i % 2 ? 18 : -18) * (from.y === here.y ? 0 : 1);
      const my = (from.y + here.y) / 2 + (from.y === here.y ? (i % 2 ? 26 : -26) : 0);
      // Stop short of the port so the arrowhead is not hidden under its label.
      const dx = here.x - mx;
      const dy = here.y - my;
      const len = Math.hypot(dx, dy) || 1;
      const ex = here.x - (dx / len) * 10;
      const ey = here.y - (dy / len) * 10;
      arrows.push(`<path d="M${from.x},${from.y} Q${mx},${my} ${ex},${ey}" fill="none" stroke="${color}" stroke-width="2.4" ${h.encap === 'geneve' ? 'stroke-dasharray="7 4"' : ''} marker-end="url(#arrow${h.encap === 'geneve' ? 'g' : h.leg})" opacity="0.9"/>`);
    }
    if (here) {
      const k = `${here.x},${here.y}`;
      const n = placed.get(k) ?? 0;
      placed.set(k, n + 1);
      const cx = here.x + 24 + (n % 4) * 21;
      const cy = here.y - 20 - Math.floor(n / 4) * 21;
      marks.push(`<circle cx="${cx}" cy="${cy}" r="9.5" fill="${color}" stroke="#fff" stroke-width="1.5"/>`, `<text x="${cx}" y="${cy + 4}" class="num">${h.index}</text>`);
    }
  });
  for (const d of r?.decisions ?? []) {
    const box = lay.boxes.get(d.netns);
    if (!box) continue;
    marks.push(`<text x="${box.x + box.w / 2}" y="${box.y + 70}" class="verdict">${esc(verdictShort(d))}</text>`);
  }
  let height = lay.height;
  const steps: string[] = [];
  if (r) {
    let y = lay.height + 10;
    steps.push(`<text x="30" y="${y}" class="title">${esc(`${r.source.pod} -> ${r.target}: ${r.request.summary}`)}</text>`);
    y += 26;
    for (const [i, h] of hops.entries()) {
      const prev = hops[i - 1];
      const legStart = !prev || prev.leg !== h.leg;
      const color = h.encap === 'geneve' ? GENEVE : LEG_COLORS[(h.leg - 1) % LEG_COLORS.length];
      if (legStart) {
        const l = r.legs.find((x) => x.id === h.leg);
        steps.push(`<text x="30" y="${y}" class="sub" font-weight="bold">${esc(`connection ${h.leg}: ${l?.client ?? ''} -> ${l?.server ?? ''}${l?.encap === 'hbone' ? ' (HBONE: mutual TLS + HTTP/2 CONNECT)' : l?.istioMtls ? ' (Istio mTLS: sidecar to sidecar, to the app port)' : ''}`)}</text>`);
        y += 18;
      }
      steps.push(`<circle cx="40" cy="${y - 4}" r="9.5" fill="${color}"/>`, `<text x="40" y="${y}" class="num">${h.index}</text>`);
      const lines = wrap(`${h.where} · ${h.interface}: ${plainStep(h, prev, legStart)}`, Math.floor((lay.width - 90) / 6.6));
      lines.forEach((l, k) => steps.push(`<text x="58" y="${y + k * 15}" class="step">${esc(l)}</text>`));
      y += lines.length * 15;
      if (h.reason) {
        steps.push(`<text x="58" y="${y}" class="why">${esc(`why: ${h.reason}`)}</text>`);
        y += 14;
      }
      y += 6;
      for (const d of r.decisions.filter((x) => x.afterHop === h.index)) {
        steps.push(`<rect x="31" y="${y - 13}" width="18" height="18" rx="3" fill="#d9730d" transform="rotate(45 40 ${y - 4})"/>`, `<text x="40" y="${y}" class="num">L7</text>`);
        const text = decisionWords(d);
        const dl = wrap(text, Math.floor((lay.width - 90) / 6.6));
        dl.forEach((l, k) => steps.push(`<text x="58" y="${y + k * 15}" class="step" font-weight="bold">${esc(l)}</text>`));
        y += dl.length * 15 + 6;
      }
    }
    const later = r.later.filter((g) => g.hops.some((x) => x.reason?.includes('table 102')));
    if (later.length) {
      y += 6;
      const text = `Later packets: after each connection's first packet, ${later.reduce((a, g) => a + g.packets, 0)} packets (ACKs, data, replies) skip the Geneve tunnels: the node marks them 0x40 (they belong to a connection ztunnel took over) and table 102 sends them straight over the ztunnel pod's veth.`;
      for (const l of wrap(text, Math.floor((lay.width - 60) / 6.6))) { steps.push(`<text x="30" y="${y}" class="step">${esc(l)}</text>`); y += 15; }
    }
    height = y + 20;
  }
  const defs = [...LEG_COLORS.map((c, i) => [`${i + 1}`, c]), ['g', GENEVE]]
    .map(([id, c]) => `<marker id="arrow${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${c}"/></marker>`);
  const title = r ? `${r.lab}: ${r.source.pod} -> ${r.target}` : `lab ${plan.lab}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${lay.width}" height="${height}" viewBox="0 0 ${lay.width} ${height}">`,
    `<title>${esc(title)}</title>`,
    `<style>${STYLE}</style>`,
    `<defs>${defs.join('')}</defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="30" y="36" class="title" font-size="18">${esc(r ? `lab ${plan.lab}: how ${r.source.pod} reached ${r.target}` : `lab ${plan.lab}`)}</text>`,
    ...body, ...arrows, ...lay.portPills, ...marks, ...steps,
    '</svg>',
  ].join('\n');
}

/** A waypoint's decision in one short line, for its box: `GET /hostname -> v1 (90%): 200`. */
export function verdictShort(d: PlacedDecision): string {
  if (d.localReply) return `${d.method} ${d.path.length > 14 ? `${d.path.slice(0, 13)}…` : d.path}: ${d.status}${d.responseCodeDetails === 'rbac_access_denied' ? ' RBAC' : ''}`;
  const to = d.backend?.subset ? `${d.backend.subset} (${d.backend.weightPercent}%)` : d.upstreamHost ?? '?';
  return `${d.method} -> ${to}: ${d.status}`;
}

/** A waypoint's decision in plain words, for the numbered steps. */
export function decisionWords(d: PlacedDecision): string {
  if (d.where.startsWith('sidecar ')) return sidecarDecisionWords(d);
  const who = d.sourceIdentity ? ` from ${d.sourceIdentity.replace(/^spiffe:\/\/[^/]+\//, '')}` : '';
  const head = `${d.where} opens the tunnel and reads the HTTP request inside: ${d.requestLine} (Host ${d.authority})${who}.`;
  if (d.localReply) return `${head} It answers ${d.status} itself: ${d.denial}. The request goes no further.`;
  const route = d.route ? ` ${d.route.origin}${d.route.index >= 0 ? ` (rule ${d.route.index})` : ''} matches;` : '';
  const backend = d.backend ? ` it picks ${d.backend.host}:${d.backend.port}${d.backend.subset ? ` subset ${d.backend.subset}` : ''} (weight ${d.backend.weightPercent}%),` : '';
  return `${head}${route}${backend} endpoint ${d.upstreamHost}, and sends the request there over HBONE, with its own identity; ${d.status} comes back.`;
}

/** A sidecar's request line in plain words: which way it went, where it sent the request and how. */
function sidecarDecisionWords(d: PlacedDecision): string {
  const who = d.sourceIdentity ? ` from ${d.sourceIdentity.replace(/^spiffe:\/\/[^/]+\//, '')}` : d.sourceAddress ? ` from ${d.sourceAddress} (plaintext, no identity)` : '';
  if (d.localReply) return `${d.where} reads the request ${d.requestLine}${who} and answers ${d.status} itself: ${d.denial}.`;
  if (d.direction === 'inbound') return `${d.where} reads the request ${d.requestLine}${who} and passes it to its app at ${d.upstreamHost} over lo; ${d.status} comes back.`;
  const how = d.upstreamTransport?.startsWith('hbone') ? `over HBONE (${d.upstreamTransport.replace(/^hbone /, 'to ')})` : d.upstreamTransport === 'istio-mtls' ? 'over Istio mTLS (TLS straight to the pod\'s port)' : `as ${d.upstreamTransport ?? 'TCP'}`;
  return `${d.where} reads its app's request ${d.requestLine} (Host ${d.authority}), picks endpoint ${d.upstreamHost} and sends it ${how}; ${d.status} comes back.`;
}

export function wrapHtml(title: string, svg: string, text: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:20px;background:#fff}pre{font-size:12px;background:#f6f6f6;padding:12px;overflow-x:auto}</style>
</head><body>
<h2>${esc(title)}</h2>
${svg}
<h3>Hop table</h3>
<pre>${esc(text)}</pre>
</body></html>
`;
}
