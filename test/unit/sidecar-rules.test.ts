// The sidecar pod's nat rules against Istio's own golden files (read from shared/, never copied
// into the project): rule for rule and in order, comparing each rule's matches and target
// regardless of the order iptables-save happens to print options in.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { istioInitRuleset } from '../../src/sidecar/istio-iptables.js';
import { renderIptablesRestore } from '../../src/plan/iptables-render.js';

const REF = join(import.meta.dirname ?? '.', '..', '..', '..', 'shared', 'reference', 'istio-goldens');

/** `-A CHAIN` + the sorted match groups (`! -d 127.0.0.1/32`, `-m owner --uid-owner 1337`...) + `-j TARGET ...`. */
export function normalizeRule(line: string): string {
  const tokens = line.trim().split(/\s+/);
  const groups: string[] = [];
  let head = '';
  let target = '';
  for (let i = 0; i < tokens.length;) {
    let neg = '';
    if (tokens[i] === '!') { neg = '! '; i++; }
    const opt = tokens[i++];
    const vals: string[] = [];
    while (i < tokens.length && !tokens[i].startsWith('-') && tokens[i] !== '!') vals.push(tokens[i++]);
    const g = `${neg}${opt} ${vals.join(' ')}`.trim();
    if (opt === '-A') head = g;
    else if (opt === '-j' || target) target += (target ? ' ' : '') + g;
    else if (g !== '-m tcp') groups.push(g);
  }
  return [head, ...groups.sort(), target].join(' ');
}

/** Rules in order; chain declarations (`-N X` or restore's `:X - [0:0]`) as `-N X`; istio-iptables' `iptables -t nat` command form too. */
const rulesOf = (text: string): string[] => text.split('\n').map((l) => l.replace(/^iptables -t nat /, '')).flatMap((l) => {
  const chain = /^(?:-N |:)(\S+)/.exec(l);
  if (chain && !['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'FORWARD'].includes(chain[1])) return [`-N ${chain[1]}`];
  return l.startsWith('-A ') ? [normalizeRule(l)] : [];
});

t.test('the CNI variant (ambient profile) is Istio\'s cni basic.txt.golden, rule for rule', async (t) => {
  const file = join(REF, 'cni-basic.txt.golden');
  if (!existsSync(file)) { t.plan(0, `no ${file} (shared/ is not beside this checkout)`); return; }
  const ours = rulesOf(renderIptablesRestore(istioInitRuleset({ variant: 'cni' })));
  const istio = rulesOf(readFileSync(file, 'utf8'));
  t.same(ours, istio);
  t.match(ours.find((r) => r.includes('15020') && r.startsWith('-A ISTIO_OUTPUT')), /--dport 15020 .*-j RETURN/, 'the CNI plugin\'s outbound 15020 exclusion');
});

t.test('the istio-init variant is Istio\'s capture goldens with the default injection args, rule for rule', async (t) => {
  // No istio-iptables golden uses the default args (-i '*' -b '*' -d 15090,15021,15020), so the
  // expected set is derived from two (istio-goldens/README.md): inbound-ports-wildcard (-b '*'),
  // plus one ISTIO_INBOUND RETURN per -d port in the given order before the catch-all redirect,
  // plus the -i '*' tail rule as kube-virt-interfaces shows it.
  const wildcard = join(REF, 'capture-inbound-ports-wildcard.golden');
  const kubevirt = join(REF, 'capture-kube-virt-interfaces.golden');
  const args = join(REF, 'inject-hello-istio-init-args.txt');
  if (![wildcard, kubevirt, args].every(existsSync)) { t.plan(0, `no ${REF} (shared/ is not beside this checkout)`); return; }
  const rendered = readFileSync(args, 'utf8');
  const d = /- -d\n\s+- ([\d,]+)/.exec(rendered)?.[1];
  t.equal(d, '15090,15021,15020', 'the default injection\'s -d, read from Istio\'s rendered pod');
  const base = rulesOf(readFileSync(wildcard, 'utf8'));
  const catchAll = base.findIndex((r) => r.startsWith('-A ISTIO_INBOUND') && r.endsWith('-j ISTIO_IN_REDIRECT'));
  t.ok(catchAll > 0, 'the wildcard golden has the catch-all ISTIO_INBOUND redirect');
  const tail = rulesOf(readFileSync(kubevirt, 'utf8')).filter((r) => r.startsWith('-A ISTIO_OUTPUT') && r.endsWith('-j ISTIO_REDIRECT'));
  t.equal(tail.length, 1, 'kube-virt-interfaces has the one -i \'*\' tail rule');
  const expected = [
    ...base.slice(0, catchAll),
    ...d!.split(',').map((p) => normalizeRule(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`)),
    ...base.slice(catchAll),
    ...tail,
  ];
  t.same(rulesOf(renderIptablesRestore(istioInitRuleset({ variant: 'istio-init' }))), expected);
  t.same(rulesOf(renderIptablesRestore(istioInitRuleset())), expected, 'istio-init is the default variant of the renderer');
});

t.test('normalizeRule: option order and -m tcp do not matter, negation and values do', async (t) => {
  t.equal(normalizeRule('-A X ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -j Y'), normalizeRule('-A X -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -j Y'));
  t.not(normalizeRule('-A X ! -d 1.1.1.1/32 -j Y'), normalizeRule('-A X -d 1.1.1.1/32 -j Y'));
  t.not(normalizeRule('-A X --dport 1 -j Y'), normalizeRule('-A X --dport 2 -j Y'));
});
