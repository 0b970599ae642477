// istio-cni 1.18 `redirectMode: iptables`, node side (reference §1): chains, marks,
// ipset, ip rules, routes, sysctls and Geneve links, in the order CreateRulesOnNode
// writes them. Args use the form iptables-save prints (`--set-xmark 0x200/0x200` for
// istio-cni's `--set-mark 0x200/0x200`), so the saved rules read like the input.
import type { GeneveSpec, IpRuleSpec, IpsetSpec, IptRule, RouteSpec, Ruleset } from '../plan/types.js';
import { iptRule } from '../plan/iptables-render.js';
import { DNS_CAPTURE_PORT } from '../mesh/ports.js';

export const ZTUNNEL_IPSET = 'ztunnel-pods-ips';
export const INBOUND_TUN = 'istioin';
export const OUTBOUND_TUN = 'istioout';
export const INBOUND_TUN_VNI = 1000;
export const OUTBOUND_TUN_VNI = 1001;
export const INBOUND_TUN_IP = '192.168.126.1';
export const ZTUNNEL_INBOUND_TUN_IP = '192.168.126.2';
export const OUTBOUND_TUN_IP = '192.168.127.1';
export const ZTUNNEL_OUTBOUND_TUN_IP = '192.168.127.2';
export const TUN_PREFIX = 30;
export const DEFAULT_GENEVE_PORT = 6081;
/** What the kernel gives a Geneve link over a 1500-byte underlay; S16 shows it on a node. */
export const GENEVE_MTU = 1450;
export { DNS_CAPTURE_PORT };

/** Route tables istio-cni uses on the node. */
export const RouteTable = { inbound: 100, outbound: 101, proxy: 102 } as const;

/** Mark legend (reference §1.3), written the way iptables-save prints them. */
export const Mark = {
  outbound: '0x100/0x100',
  skip: '0x200/0x200',
  connSkip: '0x220/0x220',
  proxy: '0x210/0x210',
  proxyRet: '0x40/0x40',
} as const;

export interface AmbientNodeInput {
  /** ztunnel pod's host-side veth. */
  zv: string;
  /** ztunnel pod IP. */
  zip: string;
  /** First address of the node's pod CIDR (istio-cni GetHostIP). */
  hostIp: string;
  /** Enrolled ambient pods on this node. */
  pods: Array<{ ip: string; uid: string; hostVeth: string }>;
  genevePort?: number;
  /** ISTIO_META_DNS_CAPTURE=true on the ztunnel pod (ztunnel 1.19+ serves :15053). */
  dnsCapture?: boolean;
}

export interface AmbientNodeConfig {
  ruleset: Ruleset;
  ipsets: IpsetSpec[];
  rules: IpRuleSpec[];
  routes: RouteSpec[];
  sysctls: Record<string, string>;
  geneve: GeneveSpec[];
}

/** mangle/nat chain pairs, in istio-cni's initializeLists order (reference §1.2). */
const CHAINS: Array<{ table: 'nat' | 'mangle'; name: string; from: string }> = [
  { table: 'nat', name: 'ztunnel-PREROUTING', from: 'PREROUTING' },
  { table: 'nat', name: 'ztunnel-POSTROUTING', from: 'POSTROUTING' },
  { table: 'mangle', name: 'ztunnel-PREROUTING', from: 'PREROUTING' },
  { table: 'mangle', name: 'ztunnel-POSTROUTING', from: 'POSTROUTING' },
  { table: 'mangle', name: 'ztunnel-OUTPUT', from: 'OUTPUT' },
  { table: 'mangle', name: 'ztunnel-INPUT', from: 'INPUT' },
  { table: 'mangle', name: 'ztunnel-FORWARD', from: 'FORWARD' },
];

function manglePrerouting(zv: string, zip: string, genevePort: number): IptRule[] {
  const m = (args: string): IptRule => iptRule('mangle', 'ztunnel-PREROUTING', args);
  return [
    // 1-4: packets coming back out of the tunnels were already handled by ztunnel.
    m(`-i ${INBOUND_TUN} -j MARK --set-xmark ${Mark.skip}`),
    m(`-i ${INBOUND_TUN} -j RETURN`),
    m(`-i ${OUTBOUND_TUN} -j MARK --set-xmark ${Mark.skip}`),
    m(`-i ${OUTBOUND_TUN} -j RETURN`),
    // 5: the Geneve outer packets themselves.
    m(`-p udp -m udp --dport ${genevePort} -j RETURN`),
    // 6-7: both directions of a connection ztunnel or the host started skip capture.
    m(`-m connmark --mark ${Mark.connSkip} -j MARK --set-xmark ${Mark.skip}`),
    m(`-m mark --mark ${Mark.skip} -j RETURN`),
    // 8-9: later packets of a spoofed-source ztunnel connection go straight back over <ZV>.
    m(`! -i ${zv} -m connmark --mark ${Mark.proxy} -j MARK --set-xmark ${Mark.proxyRet}`),
    m(`-m mark --mark ${Mark.proxyRet} -j RETURN`),
    // 10-11: ztunnel sending as a pod (original source kept) is routed normally.
    m(`! -s ${zip}/32 -i ${zv} -j MARK --set-xmark ${Mark.proxy}`),
    m(`-m mark --mark ${Mark.skip} -j RETURN`),
    // 12-14: ztunnel's own-IP traffic and all UDP are never captured.
    m(`-i ${zv} -j MARK --set-xmark ${Mark.connSkip}`),
    m(`-p udp -j MARK --set-xmark ${Mark.connSkip}`),
    m(`-m mark --mark ${Mark.skip} -j RETURN`),
    // 15: TCP from an enrolled pod goes outbound through istioout.
    m(`-p tcp -m set --match-set ${ZTUNNEL_IPSET} src -j MARK --set-xmark ${Mark.outbound}`),
  ];
}

function connmarkSaves(chain: string): IptRule[] {
  return [Mark.connSkip, Mark.proxy].map((mark) => {
    const bits = mark.split('/')[0];
    return iptRule('mangle', chain, `-m mark --mark ${mark} -j CONNMARK --save-mark --nfmask ${bits} --ctmask ${bits}`);
  });
}

export function ambientNodeRuleset(input: Pick<AmbientNodeInput, 'zv' | 'zip' | 'hostIp' | 'genevePort' | 'dnsCapture'>): Ruleset {
  const { zv, zip, hostIp } = input;
  const genevePort = input.genevePort ?? DEFAULT_GENEVE_PORT;
  const rules: IptRule[] = [
    // istio-cni inserts these at position 1: merge this ruleset ahead of kube-proxy's.
    ...CHAINS.map((c) => iptRule(c.table, c.from, `-j ${c.name}`)),
    ...manglePrerouting(zv, zip, genevePort),
    ...connmarkSaves('ztunnel-FORWARD'),
    ...connmarkSaves('ztunnel-INPUT'),
    // 1.18 form: `--set-mark 0x220` without a mask, so it overwrites the whole mark.
    // Keeps kubelet-style probes from the host (sourced from HostIP) out of capture.
    iptRule('mangle', 'ztunnel-OUTPUT', `-s ${hostIp}/32 -j MARK --set-xmark 0x220/0xffffffff`),
    // Outbound pod traffic keeps the Service VIP for ztunnel: no kube-proxy DNAT.
    iptRule('nat', 'ztunnel-PREROUTING', `-m mark --mark ${Mark.outbound} -j ACCEPT`),
  ];
  if (input.dnsCapture) {
    rules.push(iptRule('nat', 'ztunnel-PREROUTING',
      `-p udp -m set --match-set ${ZTUNNEL_IPSET} src -m udp --dport 53 -j DNAT --to-destination ${zip}:${DNS_CAPTURE_PORT}`));
  }
  rules.push(iptRule('nat', 'ztunnel-POSTROUTING', `-m mark --mark ${Mark.outbound} -j ACCEPT`));
  return { chains: CHAINS.map(({ table, name }) => ({ table, name })), rules };
}

/**
 * Sysctls per reference §1.8. Only `all`/`default` exist before the links do; the
 * per-device keys (<ZV>, istioin, istioout, each pod's host veth) must be written after
 * those links are created — see sysctlDevice().
 */
export function ambientNodeSysctls(input: Pick<AmbientNodeInput, 'zv' | 'pods'>): Record<string, string> {
  const s: Record<string, string> = {
    'net.ipv4.conf.all.rp_filter': '0',
    'net.ipv4.conf.default.rp_filter': '0',
  };
  for (const dev of [input.zv, INBOUND_TUN, OUTBOUND_TUN]) {
    s[`net.ipv4.conf.${dev}.rp_filter`] = '0';
    s[`net.ipv4.conf.${dev}.accept_local`] = '1';
  }
  for (const p of input.pods) s[`net.ipv4.conf.${p.hostVeth}.rp_filter`] = '0';
  return s;
}

/** The device a `net.ipv4.conf.<dev>.*` sysctl needs, or undefined for all/default/global keys. */
export function sysctlDevice(key: string): string | undefined {
  const m = /^net\.ipv[46]\.conf\.([^.]+)\./.exec(key);
  return m && m[1] !== 'all' && m[1] !== 'default' ? m[1] : undefined;
}

export function ambientNodeConfig(input: AmbientNodeInput): AmbientNodeConfig {
  const { zv, zip, hostIp } = input;
  const dstport = input.genevePort ?? DEFAULT_GENEVE_PORT;
  const zipRoute = (table: number): RouteSpec => ({ table, dst: zip, dev: zv, scope: 'link' });
  return {
    ruleset: ambientNodeRuleset(input),
    ipsets: [{
      name: ZTUNNEL_IPSET,
      type: 'hash:ip',
      comment: true,
      entries: input.pods.map((p) => ({ ip: p.ip, comment: p.uid })),
    }],
    rules: [
      { priority: 100, fwmark: Mark.skip, goto: 32766 },
      { priority: 101, fwmark: Mark.outbound, table: RouteTable.outbound },
      { priority: 102, fwmark: Mark.proxyRet, table: RouteTable.proxy },
      // No default route in table 100: destinations that are not enrolled pods fall through to main.
      { priority: 103, table: RouteTable.inbound },
    ],
    routes: [
      // The <ZIP> routes keep the Geneve outer packets themselves on the veth.
      zipRoute(RouteTable.inbound),
      ...input.pods.map((p): RouteSpec => ({
        table: RouteTable.inbound, dst: `${p.ip}/32`, via: ZTUNNEL_INBOUND_TUN_IP, dev: INBOUND_TUN, src: hostIp,
      })),
      zipRoute(RouteTable.outbound),
      { table: RouteTable.outbound, dst: 'default', via: ZTUNNEL_OUTBOUND_TUN_IP, dev: OUTBOUND_TUN },
      zipRoute(RouteTable.proxy),
      { table: RouteTable.proxy, dst: 'default', via: zip, dev: zv, onlink: true },
    ],
    sysctls: ambientNodeSysctls(input),
    geneve: [
      { name: INBOUND_TUN, vni: INBOUND_TUN_VNI, remote: zip, dstport, address: `${INBOUND_TUN_IP}/${TUN_PREFIX}`, mtu: GENEVE_MTU },
      { name: OUTBOUND_TUN, vni: OUTBOUND_TUN_VNI, remote: zip, dstport, address: `${OUTBOUND_TUN_IP}/${TUN_PREFIX}`, mtu: GENEVE_MTU },
    ],
  };
}
