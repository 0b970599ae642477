// Ruleset / ipset / ip-rule data -> the text and argv the kernel tools take.
// Rules are stored in the exact token form `iptables-save` prints, so what a learner
// reads in `iptables-save` on a lab node is byte for byte what the builders wrote.
import type { IpRuleSpec, IpsetSpec, IptRule, IptTable, RouteSpec, Ruleset } from './types.js';

/** Order of `*table` blocks in the restore input. */
export const TABLE_ORDER: readonly IptTable[] = ['raw', 'mangle', 'nat', 'filter'];

/** iptables-nft-save prints tables in its own fixed order (nft.c's table index). */
const SAVE_TABLE_ORDER: readonly IptTable[] = ['mangle', 'raw', 'filter', 'nat'];

export const BUILTIN_CHAINS: Readonly<Record<IptTable, readonly string[]>> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export const isBuiltinChain = (table: IptTable, chain: string): boolean => BUILTIN_CHAINS[table].includes(chain);

/**
 * Splits an argument string into tokens the way iptables-restore does: on blanks,
 * with double quotes grouping (`--comment "kubernetes service portals"`).
 */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\' && i + 1 < s.length) cur += s[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      inToken = true;
    } else if (/\s/.test(c)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (quoted) throw new Error(`unterminated quote in iptables args: ${s}`);
  if (inToken) out.push(cur);
  return out;
}

/** Shorthand for builders: `iptRule('mangle', 'ztunnel-INPUT', '-m mark --mark 0x220/0x220 -j ...')`. */
export const iptRule = (table: IptTable, chain: string, args: string | string[]): IptRule => ({
  table,
  chain,
  args: typeof args === 'string' ? splitArgs(args) : args,
});

// xtables_save_string leaves only [A-Za-z0-9_-] unquoted; quoting comment values the
// same way makes the restore input read exactly like the save output.
const SAVE_BARE = /^[A-Za-z0-9_-]+$/;

function quoteToken(tok: string, prev: string | undefined): string {
  const needs = tok === '' || /[\s"'\\]/.test(tok) || (prev === '--comment' && !SAVE_BARE.test(tok));
  return needs ? `"${tok.replace(/(["\\])/g, '\\$1')}"` : tok;
}

export function ruleArgsText(args: readonly string[]): string {
  return args.map((a, i) => quoteToken(a, args[i - 1])).join(' ');
}

/** `-A <chain> <args>` as one restore/save line. */
export const ruleLine = (r: IptRule): string => `-A ${r.chain} ${ruleArgsText(r.args)}`.trimEnd();

function tablesOf(rs: Ruleset, order: readonly IptTable[]): IptTable[] {
  const present = new Set<IptTable>([...rs.chains.map((c) => c.table), ...rs.rules.map((r) => r.table)]);
  return order.filter((t) => present.has(t));
}

function checkChains(rs: Ruleset): void {
  const declared = new Set(rs.chains.map((c) => `${c.table}/${c.name}`));
  for (const r of rs.rules) {
    if (!isBuiltinChain(r.table, r.chain) && !declared.has(`${r.table}/${r.chain}`)) {
      throw new Error(`rule in undeclared chain ${r.table}/${r.chain}: ${ruleLine(r)}`);
    }
  }
}

/**
 * Full `iptables-restore` input (no --noflush): every table that has a chain or rule is
 * replaced as a whole, which is what makes re-applying a node idempotent.
 */
export function renderIptablesRestore(rs: Ruleset): string {
  checkChains(rs);
  const lines: string[] = [];
  for (const table of tablesOf(rs, TABLE_ORDER)) {
    lines.push(`*${table}`);
    for (const b of BUILTIN_CHAINS[table]) lines.push(`:${b} ACCEPT [0:0]`);
    for (const c of rs.chains) if (c.table === table) lines.push(`:${c.name} - [0:0]`);
    for (const r of rs.rules) if (r.table === table) lines.push(ruleLine(r));
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

/**
 * Concatenates rulesets. Rules keep argument order within every chain, so the first
 * ruleset's jumps come first in a shared builtin chain (istio-cni `-I`s its jumps to
 * position 1 ahead of kube-proxy's).
 */
export function mergeRulesets(...rs: Ruleset[]): Ruleset {
  const seen = new Set<string>();
  const chains: Ruleset['chains'] = [];
  for (const r of rs) {
    for (const c of r.chains) {
      const k = `${c.table}/${c.name}`;
      if (!seen.has(k)) {
        seen.add(k);
        chains.push(c);
      }
    }
  }
  return { chains, rules: rs.flatMap((r) => r.rules) };
}

/** Real `iptables-save` output without comments, counters and blank lines, for golden comparison. */
export function normalizeIptablesSave(text: string): string {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    line = line.replace(/^\[\d+:\d+\]\s+/, ''); // `iptables-save -c` rule counters
    if (line.startsWith(':')) line = line.replace(/\s+\[\d+:\d+\]$/, '');
    out.push(line);
  }
  return out.join('\n') + '\n';
}

/** How iptables prints a token it parsed: numbers it re-formats. */
function savedArgs(args: readonly string[]): string[] {
  return args.map((a, i) => (args[i - 1] === '--probability' ? Number(a).toFixed(11) : a));
}

/**
 * What `iptables-save` (nft backend), normalized, prints after restoring `rs` into an empty
 * netns: tables in nft order, builtin chains, user chains sorted by name, and the rules
 * grouped per chain in that chain order. Lets a real-kernel test compare whole tables.
 */
export function expectedIptablesSave(rs: Ruleset): string {
  checkChains(rs);
  const lines: string[] = [];
  for (const table of tablesOf(rs, SAVE_TABLE_ORDER)) {
    lines.push(`*${table}`);
    const user = rs.chains.filter((c) => c.table === table).map((c) => c.name);
    const sorted = [...new Set(user)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const b of BUILTIN_CHAINS[table]) lines.push(`:${b} ACCEPT`);
    for (const c of sorted) lines.push(`:${c} -`);
    for (const chain of [...BUILTIN_CHAINS[table], ...sorted]) {
      for (const r of rs.rules) {
        if (r.table === table && r.chain === chain) lines.push(ruleLine({ ...r, args: savedArgs(r.args) }));
      }
    }
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

/**
 * `ipset restore` input. Meant for `ipset restore -exist`: re-creating an identical set
 * and re-adding a present entry are then no-ops, so a node can be re-applied.
 */
export function renderIpsetRestore(sets: IpsetSpec[]): string {
  const lines: string[] = [];
  for (const s of sets) {
    lines.push(`create ${s.name} ${s.type}${s.comment ? ' comment' : ''}`);
    for (const e of s.entries) {
      const c = s.comment && e.comment !== undefined ? ` comment "${e.comment.replace(/"/g, '')}"` : '';
      lines.push(`add ${s.name} ${e.ip}${c}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Arguments after `ip rule`: `add priority 100 fwmark 0x200/0x200 goto 32766`. */
export function ipRuleArgs(r: IpRuleSpec): string[] {
  const a = ['add', 'priority', String(r.priority)];
  if (r.fwmark) a.push('fwmark', r.fwmark);
  if (r.goto !== undefined) a.push('goto', String(r.goto));
  else a.push('lookup', String(r.table ?? 'main'));
  return a;
}

/** Arguments after `ip route`: `add table 100 10.244.0.3/32 via ... dev istioin src ...`. */
export function ipRouteArgs(r: RouteSpec): string[] {
  if (r.type === 'local') {
    const a = ['add', 'local', r.dst];
    if (r.dev) a.push('dev', r.dev);
    if (r.table !== undefined) a.push('table', String(r.table));
    return a;
  }
  const a = ['add'];
  if (r.table !== undefined) a.push('table', String(r.table));
  a.push(r.dst);
  if (r.via) a.push('via', r.via);
  if (r.dev) a.push('dev', r.dev);
  if (r.scope) a.push('scope', r.scope);
  if (r.src) a.push('src', r.src);
  if (r.onlink) a.push('onlink');
  return a;
}
