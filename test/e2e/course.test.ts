// Walks the course as a learner would, from a fresh lab: for every written exercise page
// (lab/NN-*.md) it runs each ```sh block as written (without `sudo `: the tests run as root),
// compares the ```text excerpt that follows with what the commands printed (PIDs, ephemeral
// ports and times masked; `...` in an excerpt stands for anything), performs the learner's steps
// where the page marks them (<!-- learner: NAME -->: the policies of exercises 5 and 6, the answers files
// under a scratch HOME), and ends with `lab check NN` passing (the page's last block).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, readdirSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, CLI, lab } from './helpers.js';
import { parsePage, excerptMismatch } from './course-pages.js';
import { pickScenario } from '../../src/lab/break.js';

const home = mkdtempSync(join(tmpdir(), 'course-home-'));
const shim = mkdtempSync(join(tmpdir(), 'course-bin-'));
// On a learner's machine only the exercise's lab is up, so verbs need no --lab; on this machine
// other labs may be up, so the shim names the exercise's lab for the verbs that take one.
writeFileSync(join(shim, 'lab'), `#!/usr/bin/env bash
verbs=" status exec logs ztunnel capture trace apply delete get proxy-config graph enrol unenrol label break fix "
if [ -n "$COURSE_LAB" ] && [[ "$verbs" == *" $1 "* ]] && [[ " $* " != *" --lab "* ]]; then v=$1; shift; set -- "$v" --lab "$COURSE_LAB" "$@"; fi
exec "${process.execPath}" "${CLI}" "$@"
`);
chmodSync(join(shim, 'lab'), 0o755);

function runBlock(code: string, labName: string): string {
  const script = code.split('\n').map((l) => l.replace(/(^|[\s;&|(]|\$\()sudo /g, '$1')).join('\n');
  const r = spawnSync('bash', ['-c', `exec 2>&1\n${script}`], {
    cwd: REPO, encoding: 'utf8', timeout: 120_000,
    env: { ...process.env, HOME: home, PATH: `${shim}:${process.env.PATH}`, COURSE_LAB: labName, SUDO_USER: '' },
  });
  return r.stdout ?? '';
}

// The learner's side: what each exercise asks them to write.
const SOLUTIONS: Record<string, Record<string, () => void>> = {
  '01': { answers: () => answers('01', { sleep_ip: '10.244.0.4', sleep_gateway: '10.244.0.1', httpbin_cluster_ip: '10.96.0.11', dnat_to: '10.244.1.3:80', route_to_node_b_pods: '172.18.0.3', dnat_node: 'node-a' }) },
  '02': { answers: () => answers('02', { ipset_node_b: ['10.244.1.3'], outbound_mark: '0x100', outbound_table: 101, istioout_peer: '192.168.127.2', geneve_remote: '10.244.0.2' }) },
  '03': { answers: () => answers('03', { outbound_vni: 1001, inbound_vni: 1000, hbone_port: 15008, node_b_ip_rule: 103, source_ip_seen_by_httpbin: '10.244.0.4' }) },
  '04': { answers: () => answers('04', { sleep_identity: 'spiffe://cluster.local/ns/default/sa/sleep', httpbin_identity: 'spiffe://cluster.local/ns/default/sa/httpbin', connect_authority: '10.244.1.3:80', node_a_identities: ['spiffe://cluster.local/ns/default/sa/sleep'] }) },
  '05': {
    policy: () => writeFileSync(join(home, 'httpbin-viewer.yaml'), `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: httpbin-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
`),
    answers: () => answers('05', { denied_curl_exit: 56, enforced_by: 'ztunnel-node-b' }),
  },
  '06': {
    policy: () => writeFileSync(join(home, 'reviews-viewer.yaml'), `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: reviews-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      istio.io/gateway-name: bookinfo-reviews
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    to:
    - operation:
        methods: ["GET"]
`),
    answers: () => answers('06', { source_ip_seen_by_reviews: '10.244.0.6', waypoint_port: 15008, denied_status: 403, enforced_by: 'bookinfo-reviews-istio-waypoint' }),
  },
  '07': { answers: () => answers('07', { source_ip_httpbin_sc_sees_from_sleep: '127.0.0.6', source_ip_httpbin_sees_from_sleep_sc: '10.244.0.5', source_ip_reviews_sees_from_sleep_sc: '10.244.0.7', ztunnel_port_to_httpbin_sc: 15008, decrypted_by_sleep_to_httpbin_sc: 'sidecar httpbin-sc', sleep_sc_to_httpbin_mtls_transport: 'Istio mTLS' }) },
  '08': { answers: () => answers('08', { open_connection_curl_exit: 52, new_connection_status: 200, graceful_open_connection_curl_exit: 0, listen_beside_option: 'SO_REUSEPORT' }) },
  // The page's `lab break --random --seed 7`: the learner found the fault and fixes it by hand.
  '09': {
    fix: () => { const r = lab(['exec', '--lab', 'ex09', ...HAND_FIX[SEED_7].argv]); if (r.code !== 0) throw new Error(`hand fix failed: ${r.stderr}`); },
    answers: () => answers('09', { scenario: SEED_7, where: HAND_FIX[SEED_7].where }),
  },
};

// What a learner types to fix each fault of lab break list in the demo lab (not `lab break --reset`).
const SEED_7 = pickScenario(7).id;
const HAND_FIX: Record<string, { where: string; argv: string[] }> = {
  'ip-rule': { where: 'node-a', argv: ['node-a', '--', 'ip', 'rule', 'add', 'priority', '101', 'fwmark', '0x100/0x100', 'lookup', '101'] },
  'ipset-entry': { where: 'node-a', argv: ['node-a', '--', 'ipset', 'add', 'ztunnel-pods-ips', '10.244.0.4'] },
  tproxy: { where: 'ztunnel-node-a', argv: ['ztunnel-node-a', '--', 'iptables', '-t', 'mangle', '-R', 'PREROUTING', '2', '-i', 'pistioout', '-p', 'tcp', '-j', 'TPROXY', '--on-port', '15001', '--on-ip', '127.0.0.1', '--tproxy-mark', '0x400/0xfff'] },
  'rp-filter': { where: 'node-a', argv: ['node-a', '--', 'sh', '-c', 'for k in $(sysctl -a 2>/dev/null | awk \'/\\.rp_filter = 1/ {print $1}\'); do sysctl -w $k=0; done'] },
  'deny-policy': { where: 'ztunnel-node-b', argv: ['node-b', '--', 'sh', '-c', `"${process.execPath}" "${CLI}" delete --lab ex09 -f /run/ambient-lab/ex09/faults/policy.yaml`] },
};

function answers(id: string, v: Record<string, unknown>): void {
  mkdirSync(join(home, 'answers'), { recursive: true });
  writeFileSync(join(home, 'answers', `${id}.yaml`), Object.entries(v).map(([k, x]) => `${k}: ${JSON.stringify(x)}`).join('\n') + '\n');
}

const pages = readdirSync(join(REPO, 'lab')).filter((f) => /^\d\d-.*\.md$/.test(f)).sort();
const only = process.env.COURSE_ONLY?.split(',');

t.teardown(() => {
  for (const p of pages) lab(['down', `ex${p.slice(0, 2)}`]);
  rmSync(home, { recursive: true, force: true });
  rmSync(shim, { recursive: true, force: true });
});

t.test('lab course list names every page, and every exercise is written', async (t) => {
  const r = lab(['course', 'list']);
  t.equal(r.code, 0, r.stderr);
  for (const p of pages) t.match(r.stdout, `lab/${p}`);
  t.notMatch(r.stdout, /not written yet/);
  t.equal(pages.length, 9, 'a page for each of 01-09');
  const c = lab(['check', '10']);
  t.equal(c.code, 2);
  t.match(c.stderr, /no exercise "10"/);
});

for (const page of pages) {
  const id = page.slice(0, 2);
  if (only && !only.includes(id)) continue;
  t.test(`lab/${page}`, async (t) => {
    const items = parsePage(readFileSync(join(REPO, 'lab', page), 'utf8'));
    const labName = `ex${id}`;
    let last: { code: string; out: string; line: number } | undefined;
    let checked = false;
    for (const it of items) {
      if (it.kind === 'learner') {
        const step = SOLUTIONS[id]?.[it.name];
        t.ok(step, `line ${it.line}: the test knows the learner's step "${it.name}"`);
        step?.();
      } else if (it.kind === 'sh') {
        last = { code: it.code, out: runBlock(it.code, labName), line: it.line };
        if (/lab check \d\d/.test(it.code)) checked = true;
      } else {
        t.ok(last, `line ${it.line}: a text excerpt follows a command block`);
        if (!last) continue;
        const why = excerptMismatch(it.text, last.out);
        t.notOk(why, `line ${it.line}: output of the block at line ${last.line} shows the excerpt`, { why, command: last.code, output: last.out });
      }
    }
    t.ok(checked, 'the page ends with its lab check');
    // The page's own check block ran; make sure it passed, not just printed.
    const c = lab(['check', id], { env: { HOME: home, SUDO_USER: '' } });
    t.equal(c.code, 0, `lab check ${id} passes`, { output: c.stdout + c.stderr });
    t.match(c.stdout, /\n(\d+) passed, 0 failed\n$/);
  });
}

t.test('lab course start removed the previous exercises\' labs; lab check --json says what the lines say', { skip: only ? 'COURSE_ONLY' : false }, async (t) => {
  const r = lab(['course', 'list', '--json']);
  t.equal(r.code, 0, r.stderr);
  const upLabs = (JSON.parse(r.stdout) as Array<{ lab: string; up: boolean }>).filter((x) => x.up).map((x) => x.lab);
  t.same(upLabs, [`ex${pages[pages.length - 1].slice(0, 2)}`], 'only the last exercise\'s lab is up');
  const id = pages[pages.length - 1].slice(0, 2);
  const j = lab(['check', id, '--json'], { env: { HOME: home, SUDO_USER: '' } });
  t.equal(j.code, 0, j.stderr);
  const rep = JSON.parse(j.stdout) as { exercise: string; lab: string; passed: number; failed: number; checks: Array<{ id: string; pass: boolean }> };
  t.same([rep.exercise, rep.lab, rep.failed], [id, `ex${id}`, 0]);
  t.equal(rep.passed, rep.checks.length);
  t.ok(rep.checks.every((c) => c.pass && c.id.startsWith(`${id}.`)));
});

t.test('lab check: the lab not up is exit 2 naming the command that starts it', async (t) => {
  lab(['down', 'ex01']);
  const c = lab(['check', '01']);
  t.equal(c.code, 2);
  t.match(c.stderr, /lab course start 01/);
});
