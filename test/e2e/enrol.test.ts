// Live enrolment on the real kernel: `lab unenrol` takes a running pod out of ambient (its IP
// leaves the node's ipset and table 100, the ztunnels know it as TCP, its next request goes
// plaintext: the 0x100 rule does not count it and the destination ztunnel takes it on 15006),
// `lab label namespace ... istio.io/dataplane-mode=ambient` brings it back (HBONE again), the
// pods' processes keep their PIDs, the change survives a ztunnel restart and a `lab apply`,
// and bad requests are refused with exit 2 and nothing changed.
import t from 'tap';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, sh, ruleCounters, counterOf, curlIn, waitFor } from './helpers.js';

const NAME = 'tc-enrol';
const scratch = mkdtempSync(join(tmpdir(), 'enrol-'));
const NODE_A = `al-${NAME}-node-node-a`;
const SLEEP = '10.244.0.4';
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];
const MARK_0X100 = /-A ztunnel-PREROUTING .*ztunnel-pods-ips src .*0x100/;

t.teardown(() => { lab(['down', NAME]); rmSync(scratch, { recursive: true, force: true }); });

interface Proc { id: string; pid: number; log: string; restarts: number; ready: boolean }
interface Status { pods: Array<{ name: string; mode: string }>; processes: Proc[] }
const status = (): Status => JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout) as Status;
const proc = (id: string): Proc => status().processes.find((p) => p.id === id)!;
const ipset = (): string => sh(`ip netns exec ${NODE_A} ipset list ztunnel-pods-ips`);
const table100 = (): string => sh(`ip netns exec ${NODE_A} ip route show table 100`);
const protocolOf = (node: string, ip: string): string =>
  (JSON.parse(lab(['ztunnel', 'config', node, '--lab', NAME, '--json']).stdout) as { workloads: Record<string, { protocol: string }> }).workloads[ip]?.protocol;

/** ztunnel-node-b's access-log lines (pino JSON) for connections from sleep. */
function inboundFromSleep(): Array<{ direction: string; via: string }> {
  return readFileSync(proc('ztunnel/node-b').log, 'utf8').split('\n').filter((l) => l.includes('"connection complete"') && l.includes(`"src.addr":"${SLEEP}:`))
    .map((l) => JSON.parse(l) as { direction: string; via: string });
}
const outboundLines = (): number => readFileSync(proc('ztunnel/node-a').log, 'utf8').split('\n').filter((l) => l.includes('"connection complete"') && l.includes('"direction":"outbound"')).length;

/** One request from sleep: what node-a's 0x100 rule counted and how node-b's ztunnel took it. */
async function request(t: TapTest): Promise<{ marked: number; inbound: { direction: string; via: string } }> {
  const before = counterOf(ruleCounters(NODE_A, 'mangle'), MARK_0X100);
  const n = inboundFromSleep().length;
  const r = curlIn(NAME, 'sleep', 'http://httpbin:8000/ip');
  t.equal(r.code, 0, 'the request succeeds');
  t.match(r.stdout, `"origin": "${SLEEP}"`, 'httpbin sees sleep\'s IP');
  const lines = await waitFor(() => { const l = inboundFromSleep(); return l.length > n && l; }, 10_000, "node-b's ztunnel logging the connection");
  return { marked: counterOf(ruleCounters(NODE_A, 'mangle'), MARK_0X100) - before, inbound: lines[lines.length - 1] };
}

t.test('up', async (t) => {
  const r = lab(['up', 'topologies/demo.yaml', NAME]);
  t.equal(r.code, 0, r.stderr);
});

let pids: Record<string, number> = {};

t.test('enrolled at up: the request goes via HBONE', async (t) => {
  pids = Object.fromEntries(status().processes.filter((p) => p.id.startsWith('pod/')).map((p) => [p.id, p.pid]));
  t.ok(Object.keys(pids).length >= 2, 'the pods\' processes');
  t.match(ipset(), new RegExp(`^${SLEEP} comment`, 'm'));
  const r = await request(t);
  t.ok(r.marked > 0, `0x100 counted sleep's SYN (+${r.marked})`);
  t.same([r.inbound.direction, r.inbound.via], ['inbound', 'hbone']);
});

t.test('lab unenrol sleep: out of the ipset and table 100, TCP to the ztunnels, plaintext on the wire', async (t) => {
  const r = lab(['unenrol', 'sleep', '--lab', NAME, '--json']);
  t.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  t.same(res.changed, [{ pod: 'default/sleep', node: 'node-a', ip: SLEEP, from: 'ambient', to: 'none' }]);
  t.same(res.reloaded.map((x: { id: string }) => x.id).sort(), ['ztunnel/node-a', 'ztunnel/node-b'], 'both ztunnels loaded the new config before unenrol returned');
  t.notMatch(ipset(), SLEEP, 'the ipset lacks sleep');
  t.notMatch(table100(), SLEEP, 'table 100 lacks sleep');
  t.equal(protocolOf('node-a', SLEEP), 'TCP');
  t.equal(protocolOf('node-b', SLEEP), 'TCP');
  t.equal(status().pods.find((p) => p.name === 'default/sleep')?.mode, 'none', 'lab status shows mode none');
  const outBefore = outboundLines();
  const q = await request(t);
  t.equal(q.marked, 0, 'the 0x100 rule did not count it');
  t.same([q.inbound.direction, q.inbound.via], ['inbound_passthrough', 'tcp'], "node-b's ztunnel took it as plaintext on 15006");
  t.equal(outboundLines(), outBefore, "node-a's ztunnel logged no outbound connection");
});

t.test('the change survives a ztunnel restart by the supervisor and a lab apply', async (t) => {
  const zt = proc('ztunnel/node-a');
  process.kill(zt.pid, 'SIGKILL');
  await waitFor(() => { const p = proc('ztunnel/node-a'); return p.restarts > zt.restarts && p.ready; }, 20_000, 'the supervisor restarting ztunnel/node-a');
  t.equal(protocolOf('node-a', SLEEP), 'TCP', 'the restarted ztunnel still knows sleep as TCP');
  const file = join(scratch, 'allow.yaml');
  writeFileSync(file, `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-default, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules: [{from: [{source: {namespaces: ["default"]}}]}]
`);
  const a = lab(['apply', '-f', file, '--lab', NAME]);
  t.equal(a.code, 0, a.stderr);
  t.equal(protocolOf('node-b', SLEEP), 'TCP', 'a re-plan by lab apply keeps the live mode');
  t.notMatch(ipset(), SLEEP);
  t.equal(lab(['delete', '-f', file, '--lab', NAME]).code, 0);
});

t.test('bad requests: exit 2, nothing changed', async (t) => {
  const before = ipset() + table100();
  for (const [args, msg] of [
    [['unenrol', 'ztunnel-node-a'], /ztunnel pod/],
    [['enrol', 'coredns'], /cluster DNS/],
    [['enrol', 'nosuch'], /no pod "nosuch"/],
    [['label', 'namespace', 'istio-system', 'istio.io/dataplane-mode=ambient'], /ztunnel pods/],
    [['label', 'namespace', 'nons', 'istio.io/dataplane-mode=ambient'], /no namespace "nons"/],
    [['label', 'namespace', 'default', 'istio.io/dataplane-mode=sidecar'], /not one the lab acts on/],
    [['label', 'pod', 'sleep', 'istio.io/dataplane-mode-'], /acts on namespaces/],
  ] as Array<[string[], RegExp]>) {
    const r = lab([...args, '--lab', NAME]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, msg);
  }
  t.equal(ipset() + table100(), before, 'ipset and table 100 unchanged');
});

t.test('lab label namespace default istio.io/dataplane-mode=ambient: sleep enrolled again, HBONE, same PIDs', async (t) => {
  const r = lab(['label', 'namespace', 'default', 'istio.io/dataplane-mode=ambient', '--lab', NAME]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, 'pod default/sleep (node-a, 10.244.0.4) enrolled');
  t.match(r.stdout, 'pod default/httpbin already enrolled (unchanged)');
  t.match(ipset(), new RegExp(`^${SLEEP} comment "[0-9a-f-]+"`, 'm'), 'back in the ipset with its UID');
  t.match(table100(), `${SLEEP} via 192.168.126.2 dev istioin`);
  t.equal(protocolOf('node-b', SLEEP), 'HBONE');
  const q = await request(t);
  t.ok(q.marked > 0, `0x100 counts it again (+${q.marked})`);
  t.same([q.inbound.direction, q.inbound.via], ['inbound', 'hbone']);
  const now = Object.fromEntries(status().processes.filter((p) => p.id.startsWith('pod/')).map((p) => [p.id, p.pid]));
  t.same(now, pids, "no pod's process was restarted");
});

t.test('lab down removes everything, the live changes included', async (t) => {
  t.equal(lab(['down', NAME]).code, 0);
  t.equal(sh(`ls /run/netns | grep '^al-${NAME}-' || true`).trim(), '');
  t.equal(sh(`ls /run/ambient-lab/${NAME} 2>&1 | grep -v 'No such' || true`).trim(), '');
});
