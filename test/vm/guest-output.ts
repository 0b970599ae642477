// Reads what test/vm/guest-ambient.sh prints inside the VM: sections headed
// `=== name ===`, `iptables -L -v -n -x` tables, and tcpdump's Geneve VNI counts.

/** Section name -> its text (without the header line). A repeated name keeps the last. */
export function guestSections(out: string): Map<string, string> {
  const sections = new Map<string, string>();
  let current: string | undefined;
  for (const line of out.split('\n')) {
    const header = /^=== (.+) ===$/.exec(line);
    if (header) {
      current = header[1];
      sections.set(current, '');
    } else if (current !== undefined) {
      sections.set(current, sections.get(current) + line + '\n');
    }
  }
  return sections;
}

export interface ListedRule {
  chain: string;
  pkts: number;
  bytes: number;
  /** The rest of the line as iptables -L prints it (target, prot, ..., match text). */
  text: string;
}

/** Rules of an `iptables -t <table> -L -v -n -x` listing, with the chain each is in. */
export function listedRules(listing: string): ListedRule[] {
  const rules: ListedRule[] = [];
  let chain = '';
  for (const line of listing.split('\n')) {
    const head = /^Chain (\S+)/.exec(line);
    if (head) { chain = head[1]; continue; }
    const rule = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (rule && chain) rules.push({ chain, pkts: Number(rule[1]), bytes: Number(rule[2]), text: rule[3] });
  }
  return rules;
}

/** Packets per Geneve VNI, from `grep -o 'vni 0x..' | sort | uniq -c` output. */
export function vniCounts(text: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of text.matchAll(/^\s*(\d+)\s+vni (0x[0-9a-f]+)\s*$/gm)) counts.set(parseInt(m[2], 16), Number(m[1]));
  return counts;
}
