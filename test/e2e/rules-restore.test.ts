// The rendered rules on a real kernel: restore them into scratch netns and read back what
// iptables-save, `ip rule` and `ip route` show — the view a learner gets on a lab node —
// then push one pod SYN through the node rules and read the rule counters.
import t from 'tap';
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  renderIptablesRestore, renderIpsetRestore, mergeRulesets, normalizeIptablesSave, expectedIptablesSave, ipRuleArgs, ipRouteArgs,
} from '../../src/plan/iptables-render.js';
import { kubeProxyRuleset } from '../../src/plan/kube-proxy.js';
import { ambientNodeConfig } from '../../src/ambient/node-rules.js';
import { ztunnelPodConfig } from '../../src/ambient/ztunnel-pod-rules.js';
import { istioInitRuleset } from '../../src/sidecar/istio-iptables.js';
import type { IpRuleSpec, RouteSpec } from '../../src/plan/types.js';

import { GOLDEN, example } from '../unit/rules-example.js';

const PREFIX = `alt-rules-${process.pid}`;
const created: string[] = [];

async function netns(suffix: string): Promise<string> {
  const name = `${PREFIX}-${suffix}`;
  await execa('ip', ['netns', 'add', name]);
  created.push(name);
  await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

t.teardown(async () => {
  for (const ns of created.reverse()) await execa('ip', ['netns', 'del', ns], { reject: false });
});

const ip = async (ns: string, args: string[]): Promise<string> => (await execa('ip', ['-n', ns, ...args])).stdout;
const inNs = async (ns: string, cmd: string, args: string[], input?: string): Promise<string> =>
  (await execa('ip', ['netns', 'exec', ns, cmd, ...args], { input })).stdout;

/** A veth pair with both ends in `ns`, so `name` has carrier (the tool lacks dummy and geneve here). */
async function link(ns: string, name: string, peer: string, addr?: string): Promise<void> {
  await ip(ns, ['link', 'add', name, 'type', 'veth', 'peer', 'name', peer]);
  if (addr) await ip(ns, ['addr', 'add', addr, 'dev', name]);
  await ip(ns, ['link', 'set', peer, 'up']);
  await ip(ns, ['link', 'set', name, 'up']);
}

async function applyIp(ns: string, rules: IpRuleSpec[], routes: RouteSpec[]): Promise<void> {
  const lines = [...rules.map((r) => ['rule', ...ipRuleArgs(r)]), ...routes.map((r) => ['route', ...ipRouteArgs(r)])];
  await execa('ip', ['-n', ns, '-batch', '-'], { input: lines.map((l) => l.join(' ')).join('\n') + '\n' });
}

async function applySysctls(ns: string, sysctls: Record<string, string>): Promise<void> {
  await inNs(ns, 'sysctl', ['-q', '-w', ...Object.entries(sysctls).map(([k, v]) => `${k}=${v}`)]);
}

/** The subtest type (the last overload of t.test takes just the callback). */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

function golden(tt: TapTest, file: string, actual: string): void {
  const path = join(GOLDEN, file);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  tt.equal(actual, readFileSync(path, 'utf8'), `matches golden ${file}`);
}

const tableBlock = (saved: string, table: string): string[] => {
  const lines = saved.split('\n');
  const start = lines.indexOf(`*${table}`);
  return start < 0 ? [] : lines.slice(start, lines.indexOf('COMMIT', start));
};

const counter = (listing: string, re: RegExp): number => {
  const line = listing.split('\n').find((l) => re.test(l));
  if (!line) throw new Error(`no rule matching ${re} in\n${listing}`);
  return Number(line.trim().split(/\s+/)[0]);
};

t.test('node: ambient + kube-proxy restored, read back, exercised', async (t) => {
  const n = example.node;
  const cfg = ambientNodeConfig(n);
  const merged = mergeRulesets(cfg.ruleset, kubeProxyRuleset(example.services, { podCidr: example.podCidr }));
  const ns = await netns('node');
  const pod = await netns('pod');

  await link(ns, n.zv, 'ztpeer');
  await link(ns, 'istioin', 'istioin-p', cfg.geneve[0].address);
  await link(ns, 'istioout', 'istioout-p', cfg.geneve[1].address);
  // The enrolled pod 10.244.0.4 gets a real netns; the other enrolled pod only its host veth.
  const [p1, p2] = n.pods;
  await ip(ns, ['link', 'add', p1.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
  await link(ns, p2.hostVeth, 'p2peer');
  for (const p of n.pods) {
    await ip(ns, ['addr', 'add', `${n.hostIp}/32`, 'dev', p.hostVeth]);
    await ip(ns, ['link', 'set', p.hostVeth, 'up']);
    await ip(ns, ['route', 'add', `${p.ip}/32`, 'dev', p.hostVeth, 'scope', 'host']);
  }
  // coredns (10.244.0.3) is on the node but not enrolled.
  await link(ns, 'vethdns', 'vethdns-p');
  await ip(ns, ['route', 'add', '10.244.0.3/32', 'dev', 'vethdns', 'scope', 'link']);
  await ip(pod, ['addr', 'add', `${p1.ip}/24`, 'dev', 'eth0']);
  await ip(pod, ['link', 'set', 'eth0', 'up']);
  await ip(pod, ['route', 'add', 'default', 'via', n.hostIp, 'dev', 'eth0', 'onlink']);

  // A node forwards; the lab's node build sets this, istio-cni does not.
  await applySysctls(ns, { ...cfg.sysctls, 'net.ipv4.ip_forward': '1' });
  await inNs(ns, 'ipset', ['restore', '-exist'], renderIpsetRestore(cfg.ipsets));
  await inNs(ns, 'ipset', ['restore', '-exist'], renderIpsetRestore(cfg.ipsets)); // re-apply is a no-op
  await inNs(ns, 'iptables-restore', ['-w', '5'], renderIptablesRestore(merged));
  await applyIp(ns, cfg.rules, cfg.routes);

  const saved = normalizeIptablesSave(await inNs(ns, 'iptables-save', []));
  golden(t, 'node-ambient.iptables-save', saved);
  t.equal(saved, expectedIptablesSave(merged), 'iptables-save reads exactly like the rendered rules');
  const mangle = tableBlock(saved, 'mangle');
  t.same(mangle.filter((l) => l.startsWith('-A ztunnel-PREROUTING ')),
    cfg.ruleset.rules.filter((r) => r.table === 'mangle' && r.chain === 'ztunnel-PREROUTING').map((r) => `-A ztunnel-PREROUTING ${r.args.join(' ')}`),
    'the 15 ztunnel-PREROUTING rules in reference order');
  const natPre = tableBlock(saved, 'nat').filter((l) => l.startsWith('-A PREROUTING '));
  t.equal(natPre[0], '-A PREROUTING -j ztunnel-PREROUTING', 'istio-cni jump precedes kube-proxy');

  t.match(await inNs(ns, 'ipset', ['list', 'ztunnel-pods-ips']), /10\.244\.0\.4 comment "6c1f2a0e-5b7d-4e8a-9c3b-1d2e3f4a5b6c"/);

  const rules = (await ip(ns, ['rule', 'show'])).split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
  for (const want of [
    '100: from all fwmark 0x200/0x200 goto 32766',
    '101: from all fwmark 0x100/0x100 lookup 101',
    '102: from all fwmark 0x40/0x40 lookup 102',
    '103: from all lookup 100',
  ]) t.ok(rules.includes(want), `ip rule: ${want}`);

  const routes = async (table: number) => (await ip(ns, ['route', 'show', 'table', String(table)])).split('\n').map((l) => l.trim());
  t.same((await routes(100)).sort(), [
    `10.244.0.2 dev ${n.zv} scope link`,
    '10.244.0.4 via 192.168.126.2 dev istioin src 10.244.0.1',
    '10.244.0.5 via 192.168.126.2 dev istioin src 10.244.0.1',
  ]);
  t.same((await routes(101)).sort(), [`10.244.0.2 dev ${n.zv} scope link`, 'default via 192.168.127.2 dev istioout']);
  t.same((await routes(102)).sort(), [`10.244.0.2 dev ${n.zv} scope link`, `default via 10.244.0.2 dev ${n.zv} onlink`]);

  t.match(await ip(ns, ['route', 'get', '10.96.0.11', 'from', p1.ip, 'iif', p1.hostVeth, 'mark', '0x100']),
    /via 192\.168\.127\.2 dev istioout table 101/, 'marked pod traffic leaves through istioout');
  t.match(await ip(ns, ['route', 'get', p2.ip]), /via 192\.168\.126\.2 dev istioin table 100/, 'traffic to an enrolled pod enters istioin');
  t.match(await ip(ns, ['route', 'get', '10.244.0.3']), /^10\.244\.0\.3 dev vethdns /m, 'a non-enrolled pod is left to the main table');
  t.equal(await inNs(ns, 'sysctl', ['-n', 'net.ipv4.conf.istioin.accept_local']), '1');

  // One SYN from the enrolled pod to the httpbin VIP: captured (0x100), not DNATed by kube-proxy.
  const syn = await execa('ip', ['netns', 'exec', pod, 'curl', '-s', '--connect-timeout', '1', 'http://10.96.0.11:8000/'], { reject: false });
  // Nothing listens behind istioout here (no ztunnel), and the VIP was not DNATed to a pod that would answer.
  t.equal(syn.exitCode, 28, 'curl times out connecting (exit 28)');
  const mangleList = await inNs(ns, 'iptables', ['-t', 'mangle', '-L', 'ztunnel-PREROUTING', '-v', '-x', '-n']);
  t.ok(counter(mangleList, /match-set ztunnel-pods-ips src MARK or 0x100/) >= 1, 'rule 15 marked the SYN 0x100');
  const natList = await inNs(ns, 'iptables', ['-t', 'nat', '-L', '-v', '-x', '-n']);
  const natZt = natList.split('\n\n').find((b) => b.startsWith('Chain ztunnel-PREROUTING'))!;
  t.ok(counter(natZt, /ACCEPT.*mark match 0x100\/0x100/) >= 1, 'nat ztunnel-PREROUTING accepted it');
  const natSvc = natList.split('\n\n').find((b) => b.startsWith('Chain KUBE-SERVICES'))!;
  t.equal(counter(natSvc, /10\.96\.0\.11 .*dpt:8000/), 0, 'kube-proxy never saw it: ztunnel gets the VIP');
});

t.test('ztunnel pod: TPROXY rules restored, ip rules and local route', async (t) => {
  const cfg = ztunnelPodConfig({ zip: example.node.zip, hostIp: example.node.hostIp });
  const ns = await netns('zt');
  await link(ns, 'eth0', 'eth0-p', `${example.node.zip}/24`);
  await link(ns, 'pistioin', 'pistioin-p', cfg.geneve[0].address);
  await link(ns, 'pistioout', 'pistioout-p', cfg.geneve[1].address);
  await applySysctls(ns, cfg.sysctls);
  await inNs(ns, 'iptables-restore', ['-w', '5'], renderIptablesRestore(cfg.ruleset));
  await applyIp(ns, cfg.rules, cfg.routes);

  const saved = normalizeIptablesSave(await inNs(ns, 'iptables-save', []));
  golden(t, 'ztunnel-pod.iptables-save', saved);
  t.equal(saved, expectedIptablesSave(cfg.ruleset));
  const rules = (await ip(ns, ['rule', 'show'])).split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
  t.ok(rules.includes('20000: from all fwmark 0x400/0xfff lookup 100'));
  t.ok(rules.includes('20003: from all fwmark 0x4d3/0xfff lookup 100'));
  t.equal((await ip(ns, ['route', 'show', 'table', '100'])).trim(), 'local default dev lo scope host');
  t.match(await ip(ns, ['route', 'get', '10.244.0.4', 'mark', '0x4d3']), /^local 10\.244\.0\.4 dev lo table 100/m,
    'a spoofed-source reply is delivered locally');
});

t.test('sidecar pod: istio-init rules restored', async (t) => {
  const rs = istioInitRuleset();
  const ns = await netns('sc');
  await inNs(ns, 'iptables-restore', ['-w', '5'], renderIptablesRestore(rs));
  const saved = normalizeIptablesSave(await inNs(ns, 'iptables-save', []));
  golden(t, 'istio-init.iptables-save', saved);
  t.equal(saved, expectedIptablesSave(rs));
});
