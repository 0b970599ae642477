// Rule builders vs golden files (UPDATE_GOLDEN=1 rewrites them), plus the properties a
// learner relies on: Istio's names, numbers and order, kube-proxy's chain hashes.
import t from 'tap';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  renderIptablesRestore, mergeRulesets, normalizeIptablesSave, expectedIptablesSave, renderIpsetRestore,
  ipRuleArgs, ipRouteArgs, splitArgs, ruleLine, iptRule,
} from '../../src/plan/iptables-render.js';
import { kubeProxyRuleset, serviceChainName, probability } from '../../src/plan/kube-proxy.js';
import { ambientNodeConfig, sysctlDevice } from '../../src/ambient/node-rules.js';
import { ztunnelPodConfig } from '../../src/ambient/ztunnel-pod-rules.js';
import { istioInitRuleset } from '../../src/sidecar/istio-iptables.js';
import type { IpRuleSpec, RouteSpec, Ruleset } from '../../src/plan/types.js';

import { GOLDEN, example } from './rules-example.js';

/** The subtest type (the last overload of t.test takes just the callback). */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

function golden(tt: TapTest, file: string, actual: string): void {
  const path = join(GOLDEN, file);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  }
  tt.equal(actual, readFileSync(path, 'utf8'), `matches golden ${file}`);
}

const ipRuleLines = (rules: IpRuleSpec[]): string => rules.map((r) => ['ip', 'rule', ...ipRuleArgs(r)].join(' ')).join('\n') + '\n';
const ipRouteLines = (routes: RouteSpec[]): string => routes.map((r) => ['ip', 'route', ...ipRouteArgs(r)].join(' ')).join('\n') + '\n';
const sysctlLines = (s: Record<string, string>): string => Object.entries(s).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
const chainRules = (rs: Ruleset, table: string, chain: string): string[] =>
  rs.rules.filter((r) => r.table === table && r.chain === chain).map((r) => ruleLine(r).replace(`-A ${chain} `, ''));

const node = ambientNodeConfig(example.node);
const kube = kubeProxyRuleset(example.services, { podCidr: example.podCidr });
const zt = ztunnelPodConfig({ zip: example.node.zip, hostIp: example.node.hostIp });

t.test('golden renderings', async (t) => {
  golden(t, 'kube-proxy.rules', renderIptablesRestore(kube));
  golden(t, 'node-ambient.rules', renderIptablesRestore(node.ruleset));
  golden(t, 'node-ambient.ipset', renderIpsetRestore(node.ipsets));
  golden(t, 'node-ambient.iprules', ipRuleLines(node.rules));
  golden(t, 'node-ambient.routes', ipRouteLines(node.routes));
  golden(t, 'node-ambient.sysctls', sysctlLines(node.sysctls));
  golden(t, 'node-merged.rules', renderIptablesRestore(mergeRulesets(node.ruleset, kube)));
  golden(t, 'ztunnel-pod.rules', renderIptablesRestore(zt.ruleset));
  golden(t, 'ztunnel-pod.iprules', ipRuleLines(zt.rules));
  golden(t, 'ztunnel-pod.routes', ipRouteLines(zt.routes));
  golden(t, 'ztunnel-pod.sysctls', sysctlLines(zt.sysctls));
  golden(t, 'istio-init.rules', renderIptablesRestore(istioInitRuleset()));
});

t.test('node: mangle ztunnel-PREROUTING is reference §1.4 rows 1-15 in order', async (t) => {
  const { zv, zip } = example.node;
  t.same(chainRules(node.ruleset, 'mangle', 'ztunnel-PREROUTING'), [
    '-i istioin -j MARK --set-xmark 0x200/0x200',
    '-i istioin -j RETURN',
    '-i istioout -j MARK --set-xmark 0x200/0x200',
    '-i istioout -j RETURN',
    '-p udp -m udp --dport 6081 -j RETURN',
    '-m connmark --mark 0x220/0x220 -j MARK --set-xmark 0x200/0x200',
    '-m mark --mark 0x200/0x200 -j RETURN',
    `! -i ${zv} -m connmark --mark 0x210/0x210 -j MARK --set-xmark 0x40/0x40`,
    '-m mark --mark 0x40/0x40 -j RETURN',
    `! -s ${zip}/32 -i ${zv} -j MARK --set-xmark 0x210/0x210`,
    '-m mark --mark 0x200/0x200 -j RETURN',
    `-i ${zv} -j MARK --set-xmark 0x220/0x220`,
    '-p udp -j MARK --set-xmark 0x220/0x220',
    '-m mark --mark 0x200/0x200 -j RETURN',
    '-p tcp -m set --match-set ztunnel-pods-ips src -j MARK --set-xmark 0x100/0x100',
  ]);
  for (const chain of ['ztunnel-FORWARD', 'ztunnel-INPUT']) {
    t.same(chainRules(node.ruleset, 'mangle', chain), [
      '-m mark --mark 0x220/0x220 -j CONNMARK --save-mark --nfmask 0x220 --ctmask 0x220',
      '-m mark --mark 0x210/0x210 -j CONNMARK --save-mark --nfmask 0x210 --ctmask 0x210',
    ], chain);
  }
  t.same(chainRules(node.ruleset, 'mangle', 'ztunnel-OUTPUT'), ['-s 10.244.0.1/32 -j MARK --set-xmark 0x220/0xffffffff']);
  t.same(chainRules(node.ruleset, 'mangle', 'ztunnel-POSTROUTING'), [], 'mangle ztunnel-POSTROUTING stays empty');
  t.same(chainRules(node.ruleset, 'nat', 'ztunnel-PREROUTING'), ['-m mark --mark 0x100/0x100 -j ACCEPT'], 'no DNS DNAT by default');
  t.same(chainRules(node.ruleset, 'nat', 'ztunnel-POSTROUTING'), ['-m mark --mark 0x100/0x100 -j ACCEPT']);
});

t.test('node: jumps come first in each builtin chain after merging with kube-proxy', async (t) => {
  const merged = mergeRulesets(node.ruleset, kube);
  t.equal(chainRules(merged, 'nat', 'PREROUTING')[0], '-j ztunnel-PREROUTING');
  t.equal(chainRules(merged, 'nat', 'PREROUTING')[1], '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  t.equal(chainRules(merged, 'nat', 'POSTROUTING')[0], '-j ztunnel-POSTROUTING');
  for (const b of ['PREROUTING', 'POSTROUTING', 'OUTPUT', 'INPUT', 'FORWARD']) {
    t.same(chainRules(merged, 'mangle', b), [`-j ztunnel-${b}`], `mangle ${b}`);
  }
  t.equal(merged.chains.filter((c) => c.name === 'KUBE-SERVICES').length, 2, 'nat and filter KUBE-SERVICES both kept');
});

t.test('node: options and the rest of the config', async (t) => {
  const dns = ambientNodeConfig({ ...example.node, dnsCapture: true, genevePort: 6082 });
  t.same(chainRules(dns.ruleset, 'nat', 'ztunnel-PREROUTING'), [
    '-m mark --mark 0x100/0x100 -j ACCEPT',
    '-p udp -m set --match-set ztunnel-pods-ips src -m udp --dport 53 -j DNAT --to-destination 10.244.0.2:15053',
  ]);
  t.ok(chainRules(dns.ruleset, 'mangle', 'ztunnel-PREROUTING').includes('-p udp -m udp --dport 6082 -j RETURN'));
  t.same(dns.geneve.map((g) => [g.name, g.vni, g.remote, g.dstport, g.address]), [
    ['istioin', 1000, '10.244.0.2', 6082, '192.168.126.1/30'],
    ['istioout', 1001, '10.244.0.2', 6082, '192.168.127.1/30'],
  ]);
  t.same(node.ipsets[0].entries, example.node.pods.map((p) => ({ ip: p.ip, comment: p.uid })));
  t.same(ipRuleArgs(node.rules[0]), ['add', 'priority', '100', 'fwmark', '0x200/0x200', 'goto', '32766']);
  t.same(ipRouteArgs(node.routes[1]), ['add', 'table', '100', '10.244.0.4/32', 'via', '192.168.126.2', 'dev', 'istioin', 'src', '10.244.0.1']);
  t.equal(sysctlDevice('net.ipv4.conf.all.rp_filter'), undefined);
  t.equal(sysctlDevice('net.ipv4.conf.istioin.accept_local'), 'istioin');
  t.equal(node.sysctls['net.ipv4.conf.veth81b2c3d4.rp_filter'], '0', 'pod host veth rp_filter');
  t.equal(node.sysctls[`net.ipv4.conf.${example.node.zv}.accept_local`], '1');
});

t.test('ztunnel pod: TPROXY rules, ip rules, routes', async (t) => {
  t.same(chainRules(zt.ruleset, 'mangle', 'PREROUTING'), [
    '-i pistioin -p tcp -m tcp --dport 15008 -j TPROXY --on-port 15008 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff',
    '-i pistioout -p tcp -j TPROXY --on-port 15001 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff',
    '-i pistioin -p tcp -j TPROXY --on-port 15006 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff',
    '! -d 10.244.0.2/32 -i eth0 -p tcp -j MARK --set-xmark 0x4d3/0xfff',
  ]);
  t.same(ipRouteArgs(zt.routes[0]), ['add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100']);
  t.same(zt.rules.map((r) => [r.priority, r.fwmark, r.table]), [[20000, '0x400/0xfff', 100], [20003, '0x4d3/0xfff', 100]]);
  t.same(zt.geneve.map((g) => [g.name, g.vni, g.remote, g.address]), [
    ['pistioin', 1000, '10.244.0.1', '192.168.126.2/30'],
    ['pistioout', 1001, '10.244.0.1', '192.168.127.2/30'],
  ]);
});

t.test('kube-proxy: real chain names, probabilities, no-endpoint REJECT', async (t) => {
  // The names every Kubernetes cluster shows for kube-dns and the kubernetes Service.
  t.equal(serviceChainName('kube-system/kube-dns:dns', 'UDP'), 'KUBE-SVC-TCOU7JCQXEZGVUNU');
  t.equal(serviceChainName('kube-system/kube-dns:dns-tcp', 'TCP'), 'KUBE-SVC-ERIFXISQEP7F7OF4');
  t.equal(serviceChainName('default/kubernetes:https', 'tcp'), 'KUBE-SVC-NPX46M4PTMTKRN6Y');
  t.equal(probability(2), '0.5000000000');

  const three = kubeProxyRuleset([{
    key: 'default/web', vip: '10.96.0.20',
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    endpoints: ['10.244.0.7', '10.244.0.8', '10.244.1.9'].map((ip) => ({ pod: 'x', ip })),
  }], { podCidr: '10.244.0.0/16' });
  const svc = serviceChainName('default/web:http', 'tcp');
  const lines = chainRules(three, 'nat', svc);
  t.equal(lines.length, 4, 'masquerade rule + 3 endpoint rules');
  t.match(lines[0], /^! -s 10\.244\.0\.0\/16 -d 10\.96\.0\.20\/32 -p tcp .* -j KUBE-MARK-MASQ$/);
  t.match(lines[1], /--comment "default\/web:http -> 10\.244\.0\.7:8080" -m statistic --mode random --probability 0\.3333333333 -j KUBE-SEP-/);
  t.match(lines[2], /--probability 0\.5000000000 -j KUBE-SEP-/);
  t.notMatch(lines[3], /statistic/, 'last endpoint always matches');
  const sep = lines[3].split(' -j ')[1];
  t.same(chainRules(three, 'nat', sep), [
    '-s 10.244.1.9/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ',
    '-p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.9:8080',
  ]);

  const none = kubeProxyRuleset([{ key: 'default/gone', vip: '10.96.0.21', ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }], endpoints: [] }],
    { podCidr: '10.244.0.0/16' });
  t.same(chainRules(none, 'filter', 'KUBE-SERVICES'), [
    '-d 10.96.0.21/32 -p tcp -m comment --comment "default/gone has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
  ]);
  t.same(chainRules(none, 'nat', 'KUBE-SERVICES'), [], 'no nat capture without endpoints');
  t.notOk(none.chains.some((c) => c.name.startsWith('KUBE-SVC-')));

  const udp = chainRules(kube, 'nat', 'KUBE-SERVICES')[0];
  t.equal(udp, '-d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU');
});

t.test('istio-init: reference §4 order and options', async (t) => {
  const rs = istioInitRuleset({ proxyUid: 1500, proxyGid: 1501, excludeInboundPorts: [9000] });
  t.same(rs.chains.map((c) => c.name), ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT']);
  t.same(rs.rules.map(ruleLine), [
    '-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
    '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
    '-A PREROUTING -p tcp -j ISTIO_INBOUND',
    '-A ISTIO_INBOUND -p tcp -m tcp --dport 9000 -j RETURN',
    '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
    '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1500 -j ISTIO_IN_REDIRECT',
    '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1500 -j RETURN',
    '-A ISTIO_OUTPUT -m owner --uid-owner 1500 -j RETURN',
    '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1501 -j ISTIO_IN_REDIRECT',
    '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1501 -j RETURN',
    '-A ISTIO_OUTPUT -m owner --gid-owner 1501 -j RETURN',
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
  ]);
});

t.test('renderer mechanics', async (t) => {
  t.same(splitArgs('-m comment --comment "a b \\"c\\"" -j X'), ['-m', 'comment', '--comment', 'a b "c"', '-j', 'X']);
  t.equal(ruleLine(iptRule('nat', 'X', ['-m', 'comment', '--comment', 'plain-word', '-j', 'RETURN'])), '-A X -m comment --comment plain-word -j RETURN');
  t.equal(ruleLine(iptRule('nat', 'X', ['-m', 'comment', '--comment', 'ns/a:b', '-j', 'RETURN'])), '-A X -m comment --comment "ns/a:b" -j RETURN',
    'comments quoted like xtables_save_string');
  t.throws(() => renderIptablesRestore({ chains: [], rules: [iptRule('nat', 'NOPE', '-j RETURN')] }), /undeclared chain nat\/NOPE/);
  const text = renderIptablesRestore({ chains: [{ table: 'filter', name: 'F' }], rules: [iptRule('raw', 'OUTPUT', '-j ACCEPT'), iptRule('filter', 'F', '-j RETURN')] });
  t.equal(text, '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j ACCEPT\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:F - [0:0]\n-A F -j RETURN\nCOMMIT\n');
  t.equal(normalizeIptablesSave('# Generated by x\n*nat\n:PREROUTING ACCEPT [12:345]\n:X - [0:0]\n[3:180] -A X -j RETURN\nCOMMIT\n# Completed\n'),
    '*nat\n:PREROUTING ACCEPT\n:X -\n-A X -j RETURN\nCOMMIT\n');
  const exp = expectedIptablesSave(kube);
  t.match(exp, /^\*filter\n/, 'nft save order: filter before nat');
  t.match(exp, /--probability 0\.50000000000 /, 'iptables prints probabilities with 11 decimals');
  t.equal(renderIpsetRestore([{ name: 's', type: 'hash:ip', comment: true, entries: [{ ip: '1.2.3.4', comment: 'u-1' }, { ip: '1.2.3.5' }] }]),
    'create s hash:ip comment\nadd s 1.2.3.4 comment "u-1"\nadd s 1.2.3.5\n');
  t.same(ipRouteArgs({ table: 102, dst: 'default', via: '10.244.0.2', dev: 'zv', onlink: true }),
    ['add', 'table', '102', 'default', 'via', '10.244.0.2', 'dev', 'zv', 'onlink']);
  t.same(ipRuleArgs({ priority: 103, table: 100 }), ['add', 'priority', '103', 'lookup', '100']);
});
