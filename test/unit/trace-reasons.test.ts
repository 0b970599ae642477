import t from 'tap';
import {
  parseIptablesSave, movedRules, parseIpRules, parseRouteGet, chooseExplanation, describeRoute, describeDelivery, rulesForHop, ipRuleFor,
  ruleMatchesPacket, likelySetter,
} from '../../src/trace/reasons.js';
import type { Hop } from '../../src/trace/hops.js';

const before = `*mangle
:PREROUTING ACCEPT [21:2352]
[21:2352] -A PREROUTING -j ztunnel-PREROUTING
[0:0] -A ztunnel-PREROUTING -i istioin -j MARK --set-xmark 0x200/0x200
[0:0] -A ztunnel-PREROUTING ! -i veth8a185d63 -m connmark --mark 0x210/0x210 -j MARK --set-xmark 0x40/0x40
[0:0] -A ztunnel-PREROUTING ! -s 10.244.0.2/32 -i veth8a185d63 -j MARK --set-xmark 0x210/0x210
[0:0] -A ztunnel-PREROUTING -p tcp -m set --match-set ztunnel-pods-ips src -j MARK --set-xmark 0x100/0x100
COMMIT
*nat
[0:0] -A KUBE-SEP-RWIF -p tcp -m tcp -j DNAT --to-destination 10.244.1.3:80
COMMIT
`;
const after = before
  .replace('[21:2352] -A PREROUTING', '[30:3000] -A PREROUTING')
  .replace('[0:0] -A ztunnel-PREROUTING ! -i veth8a185d63', '[4:240] -A ztunnel-PREROUTING ! -i veth8a185d63')
  .replace('[0:0] -A ztunnel-PREROUTING ! -s', '[3:200] -A ztunnel-PREROUTING ! -s')
  .replace('[0:0] -A ztunnel-PREROUTING -p tcp', '[1:60] -A ztunnel-PREROUTING -p tcp');

const ipRules = parseIpRules(`0:	from all lookup local
100:	from all fwmark 0x200/0x200 goto 32766
101:	from all fwmark 0x100/0x100 lookup 101
102:	from all fwmark 0x40/0x40 lookup 102
103:	from all lookup 100
32766:	from all lookup main
32767:	from all lookup default
`);

t.test('iptables-save -c: rules with table, chain, position and counters; what moved', async (t) => {
  const rules = parseIptablesSave(after);
  t.equal(rules.length, 6);
  t.same(rules.map((r) => `${r.table}/${r.chain}/${r.n}`), ['mangle/PREROUTING/1', 'mangle/ztunnel-PREROUTING/1', 'mangle/ztunnel-PREROUTING/2', 'mangle/ztunnel-PREROUTING/3', 'mangle/ztunnel-PREROUTING/4', 'nat/KUBE-SEP-RWIF/1']);
  const moved = movedRules(parseIptablesSave(before), rules);
  t.same(moved.map((m) => [m.chain, m.n, m.delta]), [['PREROUTING', 1, 9], ['ztunnel-PREROUTING', 2, 4], ['ztunnel-PREROUTING', 3, 3], ['ztunnel-PREROUTING', 4, 1]]);
});

t.test('ip rules and route get output', async (t) => {
  t.same(ipRules.filter((r) => r.fwmark !== undefined).map((r) => [r.prio, r.fwmark, r.mask, r.action]), [[100, 0x200, 0x200, 'goto 32766'], [101, 0x100, 0x100, 'lookup 101'], [102, 0x40, 0x40, 'lookup 102']]);
  t.equal(ipRuleFor(ipRules, 0x210)?.prio, 100, 'a 0x210 mark has the skip bit');
  t.equal(ipRuleFor(ipRules, 0)?.prio, 103);
  t.same(parseRouteGet('10.96.0.11 from 10.244.0.4 via 192.168.127.2 dev istioout table 101 mark 0x100 \n    cache iif veth5 \n'), { dev: 'istioout', via: '192.168.127.2', table: '101', local: false });
  t.same(parseRouteGet('local 10.244.0.2 dev lo table local src 10.244.0.2 \n'), { dev: 'lo', table: 'local', local: true });
});

t.test('the mark that explains the chosen interface wins, backed by a moved MARK rule', async (t) => {
  const moved = movedRules(parseIptablesSave(before), parseIptablesSave(after));
  const q = { netns: 'n', src: '10.244.0.4', dst: '10.96.0.11', iif: 'vethS', oif: 'istioout' };
  const cands = [
    { mark: 0 },
    { mark: 0x200, route: { dev: 'eth0', local: false } },
    { mark: 0x100, route: { dev: 'istioout', via: '192.168.127.2', table: '101', local: false } },
    { mark: 0x40, route: { dev: 'vethZ', via: '10.244.0.2', table: '102', local: false } },
  ];
  const e = chooseExplanation(q, cands, ipRules, moved)!;
  t.equal(e.mark, 0x100);
  t.equal(e.ipRule?.prio, 101);
  t.match(e.setBy?.spec, /ztunnel-pods-ips/);
  t.equal(describeRoute(e, (r) => r), 'marked 0x100; ip rule 101 -> table 101 -> 192.168.127.2 dev istioout');
  // The ACK of a spoofed connection: only 0x40 leaves by the ztunnel veth.
  const ack = chooseExplanation({ ...q, oif: 'vethZ' }, cands, ipRules, moved)!;
  t.equal(ack.mark, 0x40);
  t.equal(describeRoute(ack, (r) => (r === 'vethZ' ? 'veth-ztunnel' : r)), 'marked 0x40; ip rule 102 -> table 102 -> 10.244.0.2 dev veth-ztunnel');
  // Several marks fit: a set mark that moved beats "no mark"; with none moved, no mark.
  const both = [{ mark: 0, route: { dev: 'vethS', local: false } }, { mark: 0x200, route: { dev: 'vethS', local: false } }];
  t.equal(chooseExplanation({ ...q, iif: 'veth8a185d63', oif: 'vethS' }, both, ipRules, moved)?.mark, 0x200, '0x210 set by a moved rule for this interface has the 0x200 bit');
  t.equal(chooseExplanation({ ...q, oif: 'vethS' }, both, ipRules, moved)?.mark, 0, 'a moved rule for another interface does not count');
  t.equal(chooseExplanation({ ...q, oif: 'vethS' }, both, ipRules, [])?.mark, 0);
  t.equal(chooseExplanation({ ...q, oif: 'nowhere' }, cands, ipRules, moved), undefined, 'nothing fits: no made-up reason');
});

const hop = (over: Partial<Hop>): Hop => ({
  index: 1, leg: 1, role: 'ztunnel', name: 'z', where: 'ztunnel node-a', netns: 'z', interface: 'pistioout', ifname: 'pistioout', direction: 'in',
  tUs: 0, ts: 0n, proto: 'tcp', src: '10.244.0.4:1', dst: '10.96.0.11:8000', length: 0, encap: 'none', what: '', frameIndex: 0, ...over,
});

t.test('delivery: TPROXY port from the moved rule of that interface; 0x4d3 local delivery', async (t) => {
  const z = parseIptablesSave(`*mangle
[0:0] -A PREROUTING -i pistioin -p tcp -m tcp --dport 15008 -j TPROXY --on-port 15008 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff
[1:60] -A PREROUTING -i pistioout -p tcp -j TPROXY --on-port 15001 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff
[1:60] -A PREROUTING -i pistioin -p tcp -j TPROXY --on-port 15006 --on-ip 127.0.0.1 --tproxy-mark 0x400/0xfff
[5:300] -A PREROUTING ! -d 10.244.0.2/32 -i eth0 -p tcp -j MARK --set-xmark 0x4d3/0xfff
COMMIT
`);
  const moved = movedRules([], z);
  t.equal(describeDelivery(hop({}), moved), 'TPROXY -> 127.0.0.1:15001');
  t.equal(describeDelivery(hop({ interface: 'pistioin', ifname: 'pistioin', dst: '10.244.1.3:80' }), moved), 'TPROXY -> 127.0.0.1:15006', 'the 15008 rule is skipped for port 80');
  t.match(describeDelivery(hop({ interface: 'eth0', ifname: 'eth0' }), moved), /0x4d3/);
  t.equal(describeDelivery(hop({ interface: 'eth0', ifname: 'eth0' }), []), undefined);
  t.same(rulesForHop(hop({ ifname: 'eth0' }), moved).map((r) => r.n), [4]);
  const node = movedRules([], parseIptablesSave(after));
  t.same(rulesForHop(hop({ ifname: 'veth8a185d63' }), node).map((r) => r.n), [3], 'a negated -i does not count');
});

t.test('which MARK rule marked this packet: -i/-s/-p are checked, unknown matches come last', async (t) => {
  const node = movedRules([], parseIptablesSave(`*mangle
[5:300] -A ztunnel-PREROUTING -m connmark --mark 0x220/0x220 -j MARK --set-xmark 0x200/0x200
[3:200] -A ztunnel-PREROUTING ! -i vethZ -m connmark --mark 0x210/0x210 -j MARK --set-xmark 0x40/0x40
[3:200] -A ztunnel-PREROUTING ! -s 10.244.0.2/32 -i vethZ -j MARK --set-xmark 0x210/0x210
[9:900] -A ztunnel-PREROUTING -i vethZ -j MARK --set-xmark 0x220/0x220
[1:60] -A ztunnel-PREROUTING -p udp -j MARK --set-xmark 0x220/0x220
COMMIT
`));
  t.equal(ruleMatchesPacket('! -s 10.244.0.2/32 -i vethZ -j MARK', { iif: 'vethZ', src: '10.244.0.4', dst: '10.244.1.3' }), 'yes');
  t.equal(ruleMatchesPacket('! -s 10.244.0.2/32 -i vethZ -j MARK', { iif: 'vethZ', src: '10.244.0.2', dst: '10.244.1.3' }), 'no');
  t.equal(ruleMatchesPacket('! -i vethZ -m connmark --mark 0x210/0x210 -j MARK', { iif: 'vethS', src: '1.1.1.1', dst: '2.2.2.2' }), 'maybe');
  t.equal(ruleMatchesPacket('-p udp -j MARK', { iif: 'x', src: '1.1.1.1', dst: '2.2.2.2', proto: 'tcp' }), 'no');
  // ztunnel's HBONE SYN spoofing the client IP: rule 10 (0x210), not the connmark rule nor 0x220.
  t.match(likelySetter(node, 0x200, { iif: 'vethZ', src: '10.244.0.4', dst: '10.244.1.3', proto: 'tcp' })?.spec, /set-xmark 0x210/);
  // ztunnel's own traffic: 0x220 from -i vethZ.
  t.match(likelySetter(node, 0x200, { iif: 'vethZ', src: '10.244.0.2', dst: '172.18.0.3', proto: 'tcp' })?.spec, /-i vethZ -j MARK --set-xmark 0x220/);
  t.match(likelySetter(node, 0x40, { iif: 'vethS', src: '10.244.0.4', dst: '10.96.0.11', proto: 'tcp' })?.spec, /0x40/);
});
