// Why a packet went where it went: the iptables rules whose counters moved during the trace
// (the request is the only traffic, so a moved counter is this request's doing), the ip rule
// and routing table the kernel picks for the packet (`ip route get ... iif ... mark ...`),
// and how it was delivered (TPROXY, the 0x4d3 local-delivery mark). Parsing is pure; the
// two functions that run commands are marked as such.
import { run } from '../host/run.js';
import type { Hop, RouteQuery } from './hops.js';

export interface RuleCounter {
  table: string;
  chain: string;
  /** 1-based position in its chain. */
  n: number;
  spec: string;
  packets: number;
  bytes: number;
}

export interface MovedRule extends RuleCounter {
  delta: number;
}

export function parseIptablesSave(text: string): RuleCounter[] {
  const out: RuleCounter[] = [];
  let table = '';
  const pos = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) { table = line.slice(1).trim(); pos.clear(); continue; }
    const m = /^\[(\d+):(\d+)\]\s+-A\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const n = (pos.get(m[3]) ?? 0) + 1;
    pos.set(m[3], n);
    out.push({ table, chain: m[3], n, spec: m[4], packets: Number(m[1]), bytes: Number(m[2]) });
  }
  return out;
}

export function movedRules(before: RuleCounter[], after: RuleCounter[]): MovedRule[] {
  const key = (r: RuleCounter): string => `${r.table}|${r.chain}|${r.n}|${r.spec}`;
  const prev = new Map(before.map((r) => [key(r), r.packets]));
  return after
    .map((r) => ({ ...r, delta: r.packets - (prev.get(key(r)) ?? 0) }))
    .filter((r) => r.delta > 0);
}

/** Runs `iptables-save -c` in each namespace. */
export async function snapshotCounters(netnsList: string[]): Promise<Map<string, RuleCounter[]>> {
  const res = await Promise.all(netnsList.map(async (ns) => {
    const r = await run('iptables-save', ['-c'], { netns: ns, reject: false });
    return [ns, r.exitCode === 0 ? parseIptablesSave(r.stdout) : []] as const;
  }));
  return new Map(res);
}

export interface IpRule {
  prio: number;
  fwmark?: number;
  mask?: number;
  action: string;
}

export function parseIpRules(text: string): IpRule[] {
  const out: IpRule[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const fw = /fwmark (0x[0-9a-f]+)(?:\/(0x[0-9a-f]+))?/.exec(m[2]);
    const action = /(lookup \S+|goto \d+|blackhole|unreachable|prohibit)/.exec(m[2])?.[1] ?? m[2];
    out.push({ prio: Number(m[1]), ...(fw ? { fwmark: parseInt(fw[1], 16), mask: fw[2] ? parseInt(fw[2], 16) : 0xffffffff } : {}), action });
  }
  return out;
}

export interface RouteResult {
  dev?: string;
  via?: string;
  table?: string;
  local: boolean;
}

export function parseRouteGet(text: string): RouteResult | undefined {
  const first = text.split('\n')[0] ?? '';
  if (!first.trim()) return undefined;
  return {
    ...(/ dev (\S+)/.exec(first) ? { dev: / dev (\S+)/.exec(first)![1] } : {}),
    ...(/ via (\S+)/.exec(first) ? { via: / via (\S+)/.exec(first)![1] } : {}),
    ...(/ table (\S+)/.exec(first) ? { table: / table (\S+)/.exec(first)![1] } : {}),
    local: first.startsWith('local '),
  };
}

/** The first ip rule a packet with `mark` matches (ignoring non-mark selectors, which the lab doesn't use). */
export function ipRuleFor(rules: IpRule[], mark: number): IpRule | undefined {
  return rules.find((r) => r.prio > 0 && (r.fwmark === undefined || (mark & (r.mask ?? 0xffffffff)) === r.fwmark));
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** MARK rules that moved and set (at least) the bits of `mark`. */
export function markSetters(moved: MovedRule[], mark: number): MovedRule[] {
  return moved.filter((r) => {
    const m = /--set-x?mark (0x[0-9a-f]+)/.exec(r.spec);
    return m && / -j MARK /.test(` ${r.spec} `) && (parseInt(m[1], 16) & mark) === mark;
  });
}

export interface PacketFacts {
  iif: string;
  src: string;
  dst: string;
  proto?: string;
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits = '32'] = cidr.split('/');
  const n = (s: string): number => s.split('.').reduce((a, b) => (a << 8) + Number(b), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  return ((n(ip) & mask) >>> 0) === ((n(base) & mask) >>> 0);
}

/**
 * Whether a rule's -i/-s/-d/-p matches what we know of the packet: 'yes', 'no', or 'maybe'
 * when it also has matches we cannot check from a capture (connmark, ipset...).
 */
export function ruleMatchesPacket(spec: string, p: PacketFacts): 'yes' | 'no' | 'maybe' {
  const tokens = spec.split(/\s+/);
  let unknown = false;
  for (let i = 0; i < tokens.length; i++) {
    let neg = false;
    if (tokens[i] === '!') { neg = true; i++; }
    const opt = tokens[i];
    const val = tokens[i + 1] ?? '';
    let hit: boolean | undefined;
    if (opt === '-i') hit = val === p.iif;
    else if (opt === '-s') hit = inCidr(p.src, val);
    else if (opt === '-d') hit = inCidr(p.dst, val);
    else if (opt === '-p') hit = p.proto === undefined ? undefined : val === p.proto;
    else if (opt === '-j') break;
    else if (opt === '-m' && !['tcp', 'udp', 'comment'].includes(val)) unknown = true;
    if (hit !== undefined) {
      if (hit === neg) return 'no';
      i++;
    }
  }
  return unknown ? 'maybe' : 'yes';
}

/** The MARK rule that most likely set `mark` on this packet: a certain match first, in chain order. */
export function likelySetter(moved: MovedRule[], mark: number, p?: PacketFacts): MovedRule | undefined {
  const setters = markSetters(moved, mark);
  if (!p) return setters[0];
  return setters.find((r) => ruleMatchesPacket(r.spec, p) === 'yes') ?? setters.find((r) => ruleMatchesPacket(r.spec, p) === 'maybe');
}

export interface RouteExplanation {
  mark: number;
  ipRule?: IpRule;
  route: RouteResult;
  setBy?: MovedRule;
}

/**
 * Picks the mark that explains why the packet left by `q.oif`: among 0 and the marks the
 * ip rules select on, those whose `ip route get` leaves by that interface; a mark some moved
 * MARK rule set wins over no mark.
 */
export function chooseExplanation(q: RouteQuery, candidates: { mark: number; route?: RouteResult }[], rules: IpRule[], moved: MovedRule[]): RouteExplanation | undefined {
  const fits = candidates.filter((c) => c.route && c.route.dev === q.oif);
  const facts: PacketFacts = { iif: q.iif, src: q.src, dst: q.dst, ...(q.proto ? { proto: q.proto } : {}) };
  const marked = fits.find((c) => c.mark !== 0 && likelySetter(moved, c.mark, facts));
  const pick = marked ?? fits.find((c) => c.mark === 0) ?? fits[0];
  if (!pick?.route) return undefined;
  const setBy = pick.mark ? likelySetter(moved, pick.mark, facts) : undefined;
  return { mark: pick.mark, ipRule: ipRuleFor(rules, pick.mark), route: pick.route, ...(setBy ? { setBy } : {}) };
}

/** Runs `ip rule` and `ip route get` in the query's namespace. */
export async function explainRoute(q: RouteQuery, moved: MovedRule[], cache: Map<string, IpRule[]>): Promise<RouteExplanation | undefined> {
  let rules = cache.get(q.netns);
  if (!rules) {
    const r = await run('ip', ['-n', q.netns, 'rule', 'show'], { reject: false });
    rules = parseIpRules(r.stdout);
    cache.set(q.netns, rules);
  }
  const marks = [0, ...new Set(rules.filter((r) => r.fwmark !== undefined).map((r) => r.fwmark!))];
  const candidates = await Promise.all(marks.map(async (mark) => {
    const r = await run('ip', ['-n', q.netns, 'route', 'get', q.dst, 'from', q.src, 'iif', q.iif, ...(mark ? ['mark', hex(mark)] : [])], { reject: false });
    return { mark, route: r.exitCode === 0 ? parseRouteGet(r.stdout) : undefined };
  }));
  return chooseExplanation(q, candidates, rules, moved);
}

export function describeRoute(e: RouteExplanation, ifaceName: (real: string) => string): string {
  const setMark = e.setBy ? /--set-x?mark (0x[0-9a-f]+)/.exec(e.setBy.spec)?.[1] : undefined;
  const mark = e.mark ? `marked ${setMark ?? hex(e.mark)}` : 'no mark';
  const rule = e.ipRule && e.ipRule.prio < 32766 ? `ip rule ${e.ipRule.prio} -> ` : '';
  const table = e.route.table ? `table ${e.route.table}` : 'main table';
  const to = `${e.route.via ? `${e.route.via} ` : ''}dev ${ifaceName(e.route.dev ?? '')}`;
  return `${mark}; ${rule}${table} -> ${to}`;
}

/** How a packet that ended in a namespace was taken in: TPROXY or the 0x4d3 local-delivery mark. */
export function describeDelivery(hop: Hop, moved: MovedRule[]): string | undefined {
  const mine = moved.filter((r) => r.table === 'mangle' && new RegExp(`(^| )-i ${hop.ifname}( |$)`).test(r.spec));
  const tproxy = hop.proto === 'tcp' ? mine.find((r) => / -j TPROXY /.test(` ${r.spec} `) && (!/--dport (\d+)/.test(r.spec) || hop.dst.endsWith(`:${/--dport (\d+)/.exec(r.spec)![1]}`))) : undefined;
  if (tproxy) {
    const port = /--on-port (\d+)/.exec(tproxy.spec)?.[1];
    const ip = /--on-ip (\S+)/.exec(tproxy.spec)?.[1] ?? '0.0.0.0';
    return `TPROXY -> ${ip}:${port}`;
  }
  const local = mine.find((r) => /--set-x?mark 0x4d3/.test(r.spec));
  if (local && hop.proto === 'tcp') return 'marked 0x4d3: ip rule 20003 -> table 100, local delivery to the ztunnel socket';
  return undefined;
}

/** Moved rules in the hop's namespace that match its interface (`-i` for arrivals, `-o` for departures), not negated. */
export function rulesForHop(hop: Hop, moved: MovedRule[]): MovedRule[] {
  const flag = hop.direction === 'out' ? '-o' : '-i';
  const name = hop.ifname.replace(/[.+]/g, '\\$&');
  const re = new RegExp(`(^|[^!] )${flag} ${name}( |$)`);
  return moved.filter((r) => re.test(r.spec));
}

export const ruleText = (r: RuleCounter): string => `${r.table} ${r.chain} #${r.n}: ${r.spec}`;
