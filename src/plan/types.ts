// Desired state: plain data the planners produce and the host appliers consume.
// Keeping it data (not shell strings spread over the code) is what lets the rules be
// golden-tested the way Istio tests its iptables builder.

export type IptTable = 'raw' | 'mangle' | 'nat' | 'filter';

/** One iptables rule: `-A <chain> <args...>` in table `table`. Order in a Ruleset is the order on the node. */
export interface IptRule {
  table: IptTable;
  chain: string;
  args: string[];
}

export interface Ruleset {
  /** Non-builtin chains to create, per table, in creation order. */
  chains: Array<{ table: IptTable; name: string }>;
  rules: IptRule[];
}

export interface RouteSpec {
  /** `default`, a CIDR, or an address (treated as /32). */
  dst: string;
  via?: string;
  dev?: string;
  /** Table number, or 'main' (default) / 'local'. */
  table?: number | 'main' | 'local';
  scope?: 'link' | 'host';
  src?: string;
  onlink?: boolean;
  /** 'local' for `local 0.0.0.0/0 dev lo table 100` (TPROXY delivery). */
  type?: 'unicast' | 'local';
}

export interface IpRuleSpec {
  priority: number;
  /** `0x200/0x200` style. */
  fwmark?: string;
  table?: number | 'main';
  /** `goto <priority>`, as istio-cni's rule 100 does. */
  goto?: number;
}

export interface IpsetSpec {
  name: string;
  type: 'hash:ip';
  comment: boolean;
  entries: Array<{ ip: string; comment?: string }>;
}

export interface GeneveSpec {
  name: string;
  vni: number;
  remote: string;
  dstport: number;
  address: string; // CIDR, e.g. 192.168.126.1/30
  mtu?: number;
}

/** Everything the lab puts into one network namespace beyond its links. */
export interface NetnsConfig {
  sysctls: Record<string, string>;
  rules: IpRuleSpec[];
  routes: RouteSpec[];
  ruleset?: Ruleset;
  ipsets?: IpsetSpec[];
}
