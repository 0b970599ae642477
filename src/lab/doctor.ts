// `lab doctor`: tries every tool and kernel feature the lab relies on, in a scratch
// namespace of its own (never the root one), and says what a missing piece means.
import { run } from '../host/run.js';
import { withScratchNetns } from '../host/probe.js';
import { OUTBOUND_CAPTURE_PORT } from '../mesh/ports.js';

export interface Check {
  name: string;
  kind: 'tool' | 'kernel';
  ok: boolean;
  detail: string;
  /** What the lab loses without it. */
  impact: string;
  fix: string;
}

const TOOLS: Array<[string, string[], string]> = [
  ['ip', ['-V'], 'cannot build anything (namespaces, links, routes)'],
  ['iptables', ['--version'], 'no Services (kube-proxy rules) and no ambient redirection'],
  ['iptables-restore', ['--version'], 'no Services and no ambient redirection'],
  ['ipset', ['--version'], 'no ztunnel-pods-ips set: ambient pods are not captured'],
  ['tcpdump', ['--version'], '`lab capture` and `lab trace` cannot record packets'],
  ['curl', ['--version'], 'the demo request (`lab exec sleep -- curl ...`) cannot run'],
  ['nsenter', ['--version'], 'cannot apply rules inside namespaces'],
  ['tshark', ['--version'], '`lab trace` cannot decode Geneve/HBONE (optional)'],
];

async function tool(name: string, args: string[], impact: string): Promise<Check> {
  const r = await run(name, args, { reject: false }).catch(() => ({ exitCode: 127, stdout: '', stderr: 'not found' }));
  const ok = r.exitCode === 0;
  return {
    name, kind: 'tool', ok, impact,
    detail: ok ? (r.stdout + r.stderr).split('\n')[0].trim().slice(0, 60) : 'not found',
    fix: ok ? '' : 'run scripts/setup.sh (installs iproute2 iptables ipset tcpdump curl util-linux tshark)',
  };
}

export async function runDoctor(): Promise<{ checks: Check[]; tunnel: 'kernel' | 'userspace' | 'none' }> {
  const checks = await Promise.all(TOOLS.map(([n, a, i]) => tool(n, a, i)));
  const kernelChecks = await withScratchNetns('doctor', async (ns) => {
    const sh = (script: string) => run('sh', ['-c', script], { netns: ns, reject: false });
    const kernel = async (name: string, script: string, impact: string, fix: string): Promise<Check> => {
      const r = await sh(script);
      return { name, kind: 'kernel', ok: r.exitCode === 0, detail: r.exitCode === 0 ? 'works' : r.stderr.trim().split('\n').pop() ?? 'failed', impact, fix };
    };
    const noMod = 'the kernel lacks the module and cannot load it';
    return [
      { name: 'netns', kind: 'kernel', ok: true, detail: 'works', impact: 'the lab cannot run at all', fix: 'run as root on Linux with network namespaces' } as Check,
      await kernel('veth', 'ip link add dv0 type veth peer name dv1', 'no pods or nodes can be wired', noMod),
      await kernel('bridge', 'ip link add dbr0 type bridge', 'no underlay between nodes', noMod),
      await kernel('geneve', 'ip link add dg0 type geneve id 1000 remote 10.0.0.1', 'the lab uses its userspace Geneve (TAP devices, same names, VNIs and wire format)', 'optional: a kernel with CONFIG_GENEVE (most distros; the Vagrant boxes)'),
      await kernel('vxlan', 'ip link add dx0 type vxlan id 1 remote 10.0.0.1 dstport 4789', 'nothing today (informational)', noMod),
      await kernel('tun/tap', 'ip tuntap add dev dt0 mode tap', 'the userspace Geneve cannot run (needed where the kernel has no Geneve)', 'load the tun module / give access to /dev/net/tun'),
      await kernel('ipset', 'ipset create dset hash:ip comment && iptables -t mangle -A PREROUTING -m set --match-set dset src -j RETURN', 'ambient pods cannot be matched (ztunnel-pods-ips)', 'kernel ip_set + xt_set'),
      await kernel('TPROXY', `iptables -t mangle -A PREROUTING -p tcp -j TPROXY --on-port ${OUTBOUND_CAPTURE_PORT} --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff`, 'ztunnel cannot receive captured traffic', 'kernel xt_TPROXY / nft_tproxy'),
      await kernel('xt_socket', 'iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j RETURN', 'informational (the lab uses the 0x4d3 mark rule instead)', 'kernel xt_socket'),
      await kernel('conntrack marks', 'iptables -t mangle -A PREROUTING -m connmark --mark 0x220/0x220 -j RETURN && iptables -t mangle -A FORWARD -j CONNMARK --save-mark --nfmask 0x220 --ctmask 0x220', 'return traffic of ztunnel connections is misrouted', 'kernel xt_connmark'),
      await kernel('policy routing', 'ip rule add fwmark 0x100/0x100 lookup 101 && ip route add local 0.0.0.0/0 dev lo table 100', 'no redirection to istioin/istioout', 'kernel CONFIG_IP_MULTIPLE_TABLES'),
      await kernel('nat (kube-proxy)', 'iptables -t nat -A PREROUTING -d 10.96.0.11 -p tcp -j DNAT --to-destination 10.244.0.3:80', 'Services (cluster IPs) do not work', 'kernel nf_nat'),
    ];
  }).catch((e: Error): Check[] => [{ name: 'netns', kind: 'kernel', ok: false, detail: e.message.split('\n').pop() ?? 'failed', impact: 'the lab cannot run at all', fix: 'run as root on Linux with network namespaces' }]);
  checks.push(...kernelChecks);
  const gen = checks.find((c) => c.name === 'geneve');
  const tap = checks.find((c) => c.name === 'tun/tap');
  return { checks, tunnel: gen?.ok ? 'kernel' : tap?.ok ? 'userspace' : 'none' };
}
