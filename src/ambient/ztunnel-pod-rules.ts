// istio-cni 1.18 CreateRulesWithinNodeProxyNS (reference §2): what goes into the
// ztunnel pod's netns — the tunnel ends, TPROXY onto ztunnel's listeners, and the
// local-delivery mark for replies to connections ztunnel opened with a spoofed source.
import type { GeneveSpec, IpRuleSpec, RouteSpec, Ruleset } from '../plan/types.js';
import { iptRule } from '../plan/iptables-render.js';
import {
  DEFAULT_GENEVE_PORT, GENEVE_MTU, INBOUND_TUN_IP, INBOUND_TUN_VNI, OUTBOUND_TUN_IP, OUTBOUND_TUN_VNI, RouteTable,
  TUN_PREFIX, ZTUNNEL_INBOUND_TUN_IP, ZTUNNEL_OUTBOUND_TUN_IP,
} from './node-rules.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../mesh/ports.js';

export const POD_INBOUND_TUN = 'pistioin';
export const POD_OUTBOUND_TUN = 'pistioout';
export const TPROXY_MARK = '0x400/0xfff';
export const ORG_SRC_RET_MARK = '0x4d3/0xfff';

/** ztunnel listener ports (reference §3.1). */
export const ZtunnelPort = { outbound: OUTBOUND_CAPTURE_PORT, inboundPlaintext: INBOUND_PLAINTEXT_PORT, hbone: HBONE_PORT } as const;

export interface ZtunnelPodInput {
  /** ztunnel pod IP. */
  zip: string;
  /** The node's source address toward the pod (its gateway, istio-cni GetHostIPByRoute). */
  hostIp: string;
  genevePort?: number;
}

export interface ZtunnelPodConfig {
  ruleset: Ruleset;
  rules: IpRuleSpec[];
  routes: RouteSpec[];
  sysctls: Record<string, string>;
  geneve: GeneveSpec[];
}

const tproxy = (port: number): string => `-j TPROXY --on-port ${port} --on-ip 127.0.0.1 --tproxy-mark ${TPROXY_MARK}`;

export function ztunnelPodRuleset(zip: string): Ruleset {
  const pre = (args: string) => iptRule('mangle', 'PREROUTING', args);
  return {
    chains: [],
    rules: [
      pre(`-i ${POD_INBOUND_TUN} -p tcp -m tcp --dport ${ZtunnelPort.hbone} ${tproxy(ZtunnelPort.hbone)}`),
      pre(`-i ${POD_OUTBOUND_TUN} -p tcp ${tproxy(ZtunnelPort.outbound)}`),
      pre(`-i ${POD_INBOUND_TUN} -p tcp ${tproxy(ZtunnelPort.inboundPlaintext)}`),
      // Replies to ztunnel's spoofed-source connections arrive on eth0 for a foreign
      // address; the mark routes them via table 100 (local) to the transparent socket.
      pre(`! -d ${zip}/32 -i eth0 -p tcp -j MARK --set-xmark ${ORG_SRC_RET_MARK}`),
    ],
  };
}

export function ztunnelPodConfig(input: ZtunnelPodInput): ZtunnelPodConfig {
  const { zip, hostIp } = input;
  const dstport = input.genevePort ?? DEFAULT_GENEVE_PORT;
  const hostRoute = (table: number): RouteSpec => ({ table, dst: hostIp, dev: 'eth0', scope: 'link' });
  const sysctls: Record<string, string> = {};
  // eth0 and the two tunnel links must exist before their keys are written.
  for (const dev of ['all', 'default', 'eth0', POD_INBOUND_TUN, POD_OUTBOUND_TUN]) sysctls[`net.ipv4.conf.${dev}.rp_filter`] = '0';
  // Not istio-cni's: a graceful ztunnel restart closes the old ztunnel's SO_REUSEPORT listeners
  // while the new one listens; with this the connections still in the old accept queue (and
  // half-open ones) move to the new listener instead of being reset (Linux 5.14+).
  sysctls['net.ipv4.tcp_migrate_req'] = '1';
  return {
    ruleset: ztunnelPodRuleset(zip),
    rules: [
      { priority: 20000, fwmark: TPROXY_MARK, table: RouteTable.inbound },
      { priority: 20003, fwmark: ORG_SRC_RET_MARK, table: RouteTable.inbound },
    ],
    // Tables 101/102 are left over from the Envoy-era ztunnel: in 1.18 no rule selects them.
    routes: [
      { table: RouteTable.inbound, type: 'local', dst: '0.0.0.0/0', dev: 'lo' },
      hostRoute(RouteTable.outbound),
      { table: RouteTable.outbound, dst: 'default', via: OUTBOUND_TUN_IP, dev: POD_OUTBOUND_TUN },
      hostRoute(RouteTable.proxy),
      { table: RouteTable.proxy, dst: 'default', via: INBOUND_TUN_IP, dev: POD_INBOUND_TUN },
    ],
    sysctls,
    geneve: [
      { name: POD_INBOUND_TUN, vni: INBOUND_TUN_VNI, remote: hostIp, dstport, address: `${ZTUNNEL_INBOUND_TUN_IP}/${TUN_PREFIX}`, mtu: GENEVE_MTU },
      { name: POD_OUTBOUND_TUN, vni: OUTBOUND_TUN_VNI, remote: hostIp, dstport, address: `${ZTUNNEL_OUTBOUND_TUN_IP}/${TUN_PREFIX}`, mtu: GENEVE_MTU },
    ],
  };
}
