// istio-init (istio-iptables, reference §4) for a sidecar pod: nat-table capture of
// all TCP into Envoy's 15001/15006, except HBONE (15008), excluded inbound ports and
// the proxy's own traffic (uid/gid 1337). Rules are in istio-iptables' generated order.
import type { IptRule, Ruleset } from '../plan/types.js';
import { iptRule } from '../plan/iptables-render.js';
import { ENVOY_PROMETHEUS_PORT, HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT, READINESS_PORT, STATS_PORT } from '../mesh/ports.js';

export interface IstioInitOptions {
  proxyUid?: number;
  proxyGid?: number;
  inboundPort?: number;
  outboundPort?: number;
  excludeInboundPorts?: number[];
  tunnelPort?: number;
  /**
   * 'istio-init' (the init container's rules) or 'cni' (the istio-cni plugin's, which an
   * ambient-profile cluster installs: the same rules plus `ISTIO_OUTPUT --dport 15020 -j RETURN`
   * first, so the agent's merged metrics port is never captured outbound).
   */
  variant?: 'istio-init' | 'cni';
}

/** Envoy's inbound-passthrough bind source. */
export const INBOUND_PASSTHROUGH_SRC = '127.0.0.6';

export function istioInitRuleset(opts: IstioInitOptions = {}): Ruleset {
  const uid = opts.proxyUid ?? 1337;
  const gid = opts.proxyGid ?? 1337;
  const inbound = opts.inboundPort ?? INBOUND_PLAINTEXT_PORT;
  const outbound = opts.outboundPort ?? OUTBOUND_CAPTURE_PORT;
  // istio-init's -d 15090,15021,15020; the CNI plugin lists the same ports the other way round.
  const exclude = opts.excludeInboundPorts ?? (opts.variant === 'cni'
    ? [STATS_PORT, READINESS_PORT, ENVOY_PROMETHEUS_PORT] : [ENVOY_PROMETHEUS_PORT, READINESS_PORT, STATS_PORT]);
  const tunnel = opts.tunnelPort ?? HBONE_PORT;
  const nat = (chain: string, args: string): IptRule => iptRule('nat', chain, args);

  const ownerRules = (match: '--uid-owner' | '--gid-owner', id: number): IptRule[] => [
    // Envoy calling a local app on a non-loopback address: treat it as inbound.
    nat('ISTIO_OUTPUT', `! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport ${tunnel} -m owner ${match} ${id} -j ISTIO_IN_REDIRECT`),
    nat('ISTIO_OUTPUT', `-o lo -m owner ! ${match} ${id} -j RETURN`),
    nat('ISTIO_OUTPUT', `-m owner ${match} ${id} -j RETURN`),
  ];

  return {
    chains: ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'].map((name) => ({ table: 'nat' as const, name })),
    rules: [
      nat('ISTIO_INBOUND', `-p tcp -m tcp --dport ${tunnel} -j RETURN`),
      nat('ISTIO_REDIRECT', `-p tcp -j REDIRECT --to-ports ${outbound}`),
      nat('ISTIO_IN_REDIRECT', `-p tcp -j REDIRECT --to-ports ${inbound}`),
      nat('PREROUTING', '-p tcp -j ISTIO_INBOUND'),
      ...exclude.map((p) => nat('ISTIO_INBOUND', `-p tcp -m tcp --dport ${p} -j RETURN`)),
      nat('ISTIO_INBOUND', '-p tcp -j ISTIO_IN_REDIRECT'),
      nat('OUTPUT', '-p tcp -j ISTIO_OUTPUT'),
      ...(opts.variant === 'cni' ? [nat('ISTIO_OUTPUT', `-p tcp -m tcp --dport ${STATS_PORT} -j RETURN`)] : []),
      nat('ISTIO_OUTPUT', `-s ${INBOUND_PASSTHROUGH_SRC}/32 -o lo -j RETURN`),
      ...ownerRules('--uid-owner', uid),
      ...ownerRules('--gid-owner', gid),
      nat('ISTIO_OUTPUT', '-d 127.0.0.1/32 -j RETURN'),
      nat('ISTIO_OUTPUT', '-j ISTIO_REDIRECT'),
    ],
  };
}
