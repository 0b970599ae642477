// kube-proxy (iptables mode, Kubernetes 1.27 — the Istio 1.18 era) for ClusterIP
// Services, as data. Chain names use kube-proxy's own hash, so a lab node shows the
// same KUBE-SVC-TCOU7JCQXEZGVUNU for kube-dns as any real cluster does.
import { createHash } from 'node:crypto';
import type { IptRule, Ruleset } from './types.js';
import { iptRule } from './iptables-render.js';

export interface KubeProxyServicePort {
  name?: string;
  port: number;
  targetPort: number;
  protocol: 'TCP' | 'UDP';
}

export interface KubeProxyService {
  /** `<namespace>/<name>` */
  key: string;
  vip: string;
  ports: KubeProxyServicePort[];
  endpoints: Array<{ pod: string; ip: string }>;
}

export const KUBE_MASQ_MARK = '0x4000/0x4000';

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(buf: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of buf) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

const hash16 = (s: string): string => base32(createHash('sha256').update(s).digest()).slice(0, 16);

/** kube-proxy's ServicePortName.String(): the port name is appended only when set. */
export const servicePortName = (key: string, portName?: string): string => (portName ? `${key}:${portName}` : key);

/** kube-proxy servicePortChainName: sha256(portName + protocol), base32, 16 chars. */
export const serviceChainName = (spn: string, protocol: string): string => `KUBE-SVC-${hash16(spn + protocol.toLowerCase())}`;

/** kube-proxy servicePortEndpointChainName: the endpoint `ip:port` joins the hash. */
export const endpointChainName = (spn: string, protocol: string, endpoint: string): string =>
  `KUBE-SEP-${hash16(spn + protocol.toLowerCase() + endpoint)}`;

/** kube-proxy writes probabilities with `%0.10f`. */
export const probability = (n: number): string => (1 / n).toFixed(10);

export function kubeProxyRuleset(services: KubeProxyService[], opts: { podCidr: string }): Ruleset {
  const chains: Ruleset['chains'] = [
    { table: 'nat', name: 'KUBE-SERVICES' },
    { table: 'nat', name: 'KUBE-POSTROUTING' },
    { table: 'nat', name: 'KUBE-MARK-MASQ' },
    { table: 'filter', name: 'KUBE-SERVICES' },
  ];
  const rules: IptRule[] = [
    iptRule('nat', 'PREROUTING', '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    iptRule('nat', 'OUTPUT', '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    iptRule('nat', 'POSTROUTING', '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'),
    iptRule('nat', 'KUBE-POSTROUTING', `-m mark ! --mark ${KUBE_MASQ_MARK} -j RETURN`),
    // Clears the bit so a re-traversal (e.g. through ipsec) is not masqueraded twice.
    iptRule('nat', 'KUBE-POSTROUTING', '-j MARK --set-xmark 0x4000/0x0'),
    iptRule('nat', 'KUBE-POSTROUTING', '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully'),
    iptRule('nat', 'KUBE-MARK-MASQ', `-j MARK --set-xmark ${KUBE_MASQ_MARK}`),
    // Only NEW connections: an established flow keeps working if its endpoints go away.
    iptRule('filter', 'FORWARD', '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    iptRule('filter', 'OUTPUT', '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
  ];

  for (const svc of services) {
    for (const port of svc.ports) {
      const proto = port.protocol.toLowerCase();
      const spn = servicePortName(svc.key, port.name);
      const match = ['-d', `${svc.vip}/32`, '-p', proto, '-m', 'comment', '--comment'];
      const dport = ['-m', proto, '--dport', String(port.port)];
      if (svc.endpoints.length === 0) {
        rules.push(iptRule('filter', 'KUBE-SERVICES', [...match, `${spn} has no endpoints`, ...dport, '-j', 'REJECT', '--reject-with', 'icmp-port-unreachable']));
        continue;
      }
      const svcChain = serviceChainName(spn, proto);
      chains.push({ table: 'nat', name: svcChain });
      rules.push(iptRule('nat', 'KUBE-SERVICES', [...match, `${spn} cluster IP`, ...dport, '-j', svcChain]));
      // Traffic to the VIP from outside the pod network (e.g. the node itself) is masqueraded.
      rules.push(iptRule('nat', svcChain, ['!', '-s', opts.podCidr, ...match, `${spn} cluster IP`, ...dport, '-j', 'KUBE-MARK-MASQ']));
      const n = svc.endpoints.length;
      const sepRules: IptRule[] = [];
      svc.endpoints.forEach((ep, i) => {
        const endpoint = `${ep.ip}:${port.targetPort}`;
        const sep = endpointChainName(spn, proto, endpoint);
        chains.push({ table: 'nat', name: sep });
        const stat = i < n - 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', probability(n - i)] : [];
        rules.push(iptRule('nat', svcChain, ['-m', 'comment', '--comment', `${spn} -> ${endpoint}`, ...stat, '-j', sep]));
        // Hairpin: a pod reaching itself through the VIP must see a non-self source.
        sepRules.push(iptRule('nat', sep, ['-s', `${ep.ip}/32`, '-m', 'comment', '--comment', spn, '-j', 'KUBE-MARK-MASQ']));
        sepRules.push(iptRule('nat', sep, ['-p', proto, '-m', 'comment', '--comment', spn, '-m', proto, '-j', 'DNAT', '--to-destination', endpoint]));
      });
      rules.push(...sepRules);
    }
  }
  return { chains, rules };
}
