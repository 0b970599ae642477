// `lab break` on the real kernel: each scenario, injected into a live demo lab, turns sleep's
// request to httpbin into its failure signature (curl's exit code), is seen by the check of
// exercise 9 (findFaults), and `lab break --reset` brings the request back; a fix by hand counts as
// a fix (and a reset after it is harmless); one fault at a time; bad input exit 2; `lab down` with
// a fault injected leaves nothing behind.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { lab, leftovers } from './helpers.js';
import { findFaults, readFaults } from '../../src/lab/break.js';

const NAME = 'tc-break';
t.teardown(() => { lab(['down', NAME]); });

const curl = (): { code: number; out: string } => {
  const r = lab(['exec', '--lab', NAME, 'sleep', '--', 'curl', '-s', '--max-time', '3', 'http://httpbin:8000/ip']);
  return { code: r.code, out: r.stdout };
};

t.test('up, healthy', async (t) => {
  const r = lab(['up', 'topologies/demo.yaml', NAME]);
  t.equal(r.code, 0, r.stderr);
  t.same(await findFaults(NAME), []);
  t.equal(curl().code, 0);
});

t.test('lab break list: every scenario with its symptom', async (t) => {
  const r = lab(['break', 'list', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.same((JSON.parse(r.stdout) as Array<{ scenario: string }>).map((x) => x.scenario), ['ip-rule', 'ipset-entry', 'tproxy', 'rp-filter', 'deny-policy']);
});

// The exit codes curl gives for each fault: no route to the VIP (7), a hang (28), a reset (56;
// 7 when the reset beats curl's connect, as the README says of an L4 deny).
const SIGNATURE: Record<string, { exits: number[]; found: RegExp; differences?: number }> = {
  'ip-rule': { exits: [7], found: /node-a: ip rule 101 is missing/ },
  'ipset-entry': { exits: [28], found: /node-a: 10\.244\.0\.4 is missing from ztunnel-pods-ips/ },
  // The planned rule is missing and a rule lab up did not make is there.
  tproxy: { exits: [28], found: /ztunnel-node-a: the rule .*pistioout .*--on-port 15001.* is missing/, differences: 2 },
  'rp-filter': { exits: [28], found: /node-a: net\.ipv4\.conf\.veth\w+\.rp_filter is 1, not 0/ },
  'deny-policy': { exits: [56, 7], found: /a policy applied from .*faults\/policy\.yaml is in force/ },
};

for (const [scenario, sig] of Object.entries(SIGNATURE)) {
  t.test(`lab break ${scenario}: the failure, found, then reset`, async (t) => {
    const r = lab(['break', scenario, '--lab', NAME]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, `fault injected: ${scenario}`);
    const c = curl();
    t.ok(sig.exits.includes(c.code), `curl exit ${c.code} (expected ${sig.exits.join(' or ')})`);
    const found = await findFaults(NAME);
    t.equal(found.length, sig.differences ?? 1, found.join('; '));
    t.match(found[0], sig.found);
    if (scenario === 'deny-policy') {
      const zt = JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout).processes.find((p: { id: string }) => p.id === 'ztunnel/node-b');
      t.match(readFileSync(zt.log, 'utf8'), /"policy":"default\/maintenance".*"msg":"connection denied"/, "node-b's ztunnel names the policy");
    }
    const again = lab(['break', 'ip-rule', '--lab', NAME]);
    t.equal(again.code, 2, 'one fault at a time');
    t.match(again.stderr, /already has a fault injected/);
    const reset = lab(['break', '--reset', '--lab', NAME]);
    t.equal(reset.code, 0, reset.stderr);
    t.match(reset.stdout, `undone: ${scenario}`);
    t.same(await findFaults(NAME), [], 'healthy again');
    const ok = curl();
    t.equal(ok.code, 0, 'the request works again');
    t.match(ok.out, '"origin": "10.244.0.4"');
  });
}

t.test('a fix by hand counts; the reset after it is harmless', async (t) => {
  t.equal(lab(['break', 'tproxy', '--lab', NAME]).code, 0);
  const fix = lab(['exec', '--lab', NAME, 'ztunnel-node-a', '--', 'iptables', '-t', 'mangle', '-R', 'PREROUTING', '2',
    '-i', 'pistioout', '-p', 'tcp', '-j', 'TPROXY', '--on-port', '15001', '--on-ip', '127.0.0.1', '--tproxy-mark', '0x400/0xfff']);
  t.equal(fix.code, 0, fix.stderr);
  t.same(await findFaults(NAME), []);
  t.equal(curl().code, 0);
  t.equal(lab(['fix', '--lab', NAME]).code, 0);
  const rules = lab(['exec', '--lab', NAME, 'ztunnel-node-a', '--', 'iptables', '-t', 'mangle', '-S', 'PREROUTING']).stdout;
  t.equal(rules.split('\n').filter((l) => l.includes('pistioout')).length, 1, 'the reset added no second rule');
  t.same(await findFaults(NAME), []);
  t.match(lab(['fix', '--lab', NAME]).stdout, /nothing to undo/);
});

t.test('--random --seed: the seed is printed, the scenario is not; the record keeps it', async (t) => {
  const r = lab(['break', '--random', '--seed', '7', '--lab', NAME]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, 'a fault was injected (random, seed 7)');
  const rec = readFaults(NAME);
  t.notMatch(r.stdout, rec.active[0].scenario);
  t.equal(rec.history[rec.history.length - 1].seed, 7);
});

t.test('bad input: exit 2', async (t) => {
  for (const args of [['break', 'nosuch'], ['break'], ['break', 'tproxy', '--reset'], ['break', 'tproxy', '--seed', '3'], ['break', '--random', '--seed', '-1']]) {
    const r = lab([...args, '--lab', NAME]);
    t.equal(r.code, 2, args.join(' '));
  }
});

t.test('lab down with a fault injected leaves nothing', async (t) => {
  t.equal(lab(['down', NAME]).code, 0);
  t.same(leftovers(NAME), []);
});
