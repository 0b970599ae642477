// The ztunnel process (dist/ztunnel/main.js) in a netns, fed by real TPROXY: a client netns
// routes through the ztunnel netns, whose mangle rules are the ztunnel pod's (TPROXY to
// :15001, mark 0x4d3 + `local 0/0 dev lo` for returns of spoofed connections). Checks the
// original destination (a Service VIP), the client IP the destination pod sees (spoofed),
// the same-node fast path with its RBAC (a deny resets), the admin endpoints, config reload
// (file change and SIGHUP) and SIGTERM.
// Needs root and a built dist/ (npx tsc -p tsconfig.json).
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(root, 'dist', 'ztunnel', 'main.js');
if (!existsSync(MAIN)) {
  t.fail('dist/ztunnel/main.js missing: run `npx tsc -p tsconfig.json` first');
  process.exit(1);
}

const id = process.pid.toString(36);
const C = `alt-zt-${id}-c`;
const Z = `alt-zt-${id}-z`;
const D = `alt-zt-${id}-d`;
const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNs = (ns: string, ...args: string[]): string => run('ip', 'netns', 'exec', ns, ...args);

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'alt-zt-e2e-'));
t.teardown(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const ns of [C, Z, D]) if (existsSync(`/run/netns/${ns}`)) run('ip', 'netns', 'del', ns);
  rmSync(dir, { recursive: true, force: true });
});

// Topology: C (sleep 10.77.0.2) -- zc/Z/zd -- D (legacy 10.77.2.2 TCP, httpbin 10.77.2.3 ambient).
for (const ns of [C, Z, D]) run('ip', 'netns', 'add', ns);
run('ip', 'link', 'add', 'altztc0', 'netns', C, 'type', 'veth', 'peer', 'name', 'altztzc', 'netns', Z);
run('ip', 'link', 'add', 'altztd0', 'netns', D, 'type', 'veth', 'peer', 'name', 'altztzd', 'netns', Z);
const batch = (ns: string, lines: string[]): void => {
  writeFileSync(join(dir, 'batch'), lines.join('\n') + '\n');
  run('ip', '-n', ns, '-batch', join(dir, 'batch'));
};
batch(C, ['link set lo up', 'link set altztc0 up', 'addr add 10.77.0.2/24 dev altztc0', 'route add default via 10.77.0.1']);
batch(D, ['link set lo up', 'link set altztd0 up', 'addr add 10.77.2.2/24 dev altztd0', 'addr add 10.77.2.3/24 dev altztd0', 'route add default via 10.77.2.1']);
batch(Z, [
  'link set lo up', 'link set altztzc up', 'link set altztzd up',
  'addr add 10.77.0.1/24 dev altztzc', 'addr add 10.77.2.1/24 dev altztzd',
  'rule add fwmark 0x400/0xfff lookup 100 pref 20000',
  'rule add fwmark 0x4d3/0xfff lookup 100 pref 20003',
  'route add local 0.0.0.0/0 dev lo table 100',
]);
for (const k of ['all', 'default', 'altztzc', 'altztzd']) inNs(Z, 'sysctl', '-qw', `net.ipv4.conf.${k}.rp_filter=0`);
writeFileSync(join(dir, 'rules'), [
  '*mangle',
  '-A PREROUTING -p tcp -i altztzc -j TPROXY --tproxy-mark 0x400/0xfff --on-port 15001 --on-ip 127.0.0.1',
  '-A PREROUTING -p tcp -i altztzd ! -d 10.77.2.1 -j MARK --set-mark 0x4d3/0xfff',
  'COMMIT', '',
].join('\n'));
inNs(Z, 'sh', '-c', `iptables-restore < ${join(dir, 'rules')}`);

const wl = (ip: string, name: string, sa: string, protocol: 'HBONE' | 'TCP') => ({
  workloadIp: ip, waypointAddresses: [], gatewayAddress: null, protocol, name, namespace: 'default', trustDomain: 'cluster.local',
  serviceAccount: sa, workloadName: name, workloadType: 'pod', canonicalName: name, canonicalRevision: 'latest', node: 'n1',
  nativeHbone: false, authorizationPolicies: [], status: 'Healthy', clusterId: 'Kubernetes',
});
const config = {
  node: 'n1', clusterId: 'Kubernetes', trustDomain: 'cluster.local', instanceIp: '10.77.0.1', certDir: join(dir, 'certs'),
  workloads: [wl('10.77.0.2', 'sleep', 'sleep', 'HBONE'), wl('10.77.2.2', 'legacy', 'default', 'TCP'), wl('10.77.2.3', 'httpbin', 'httpbin', 'HBONE')],
  services: [{ name: 'legacy', namespace: 'default', hostname: 'legacy.default.svc.cluster.local', vips: ['10.96.0.50'], ports: { 80: 8080 }, endpoints: ['10.77.2.2'] }],
  policies: [{ name: 'deny-9999', namespace: 'default', scope: 'Namespace', action: 'Allow', groups: [[[{ not_destination_ports: [9999] }]]] }],
};

// The destination pods: say which client address they see, then echo.
const ECHO = `
const net = require('node:net');
let up = 0;
for (const port of [80, 8080, 9999]) net.createServer((s) => { s.on('error', () => {}); s.write('peer=' + s.remoteAddress + ' local=' + s.localAddress + ':' + s.localPort + ';'); s.pipe(s); }).listen(port, '0.0.0.0', () => {
  if (++up === 3) require('node:fs').writeFileSync(process.argv[1], 'up');
});
`;
const CLIENT = `
const net = require('node:net');
const [host, port, msg] = process.argv.slice(1);
const c = net.connect({ host, port: Number(port) });
let out = '';
c.on('data', (d) => (out += d));
c.on('error', (e) => { out += 'ERR ' + e.code; });
c.on('close', () => { process.stdout.write(out); process.exit(0); });
c.end(msg);
setTimeout(() => { process.stdout.write(out + 'TIMEOUT'); process.exit(0); }, 5000);
`;
const client = (host: string, port: number, msg: string): string => inNs(C, process.execPath, '-e', CLIENT, host, String(port), msg);

async function waitFor(file: string, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const logLines = (): Array<Record<string, unknown>> =>
  readFileSync(join(dir, 'zt.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

const lastLine = (msg: string, pred: (l: Record<string, unknown>) => boolean = () => true): Record<string, unknown> | undefined =>
  logLines().filter((l) => l.msg === msg && pred(l)).pop();

async function waitForLine(msg: string, pred: (l: Record<string, unknown>) => boolean, ms = 5000): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const l = lastLine(msg, pred);
    if (l) return l;
    if (Date.now() > end) throw new Error(`timed out waiting for log line "${msg}"`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Replaces the config file as the lab does: write a temp file, rename it over. */
function rewriteConfig(): void {
  writeFileSync(join(dir, 'zt.json.tmp'), JSON.stringify(config));
  renameSync(join(dir, 'zt.json.tmp'), join(dir, 'zt.json'));
}

t.before(async () => {
  const { createLabCa, issueProxyCerts } = await import('../../src/mesh/ca.js');
  await createLabCa(join(dir, 'ca'), { lab: 'e2e' });
  // The ztunnel gets its HBONE workloads' certificates, not the CA key.
  const id = (sa: string) => ({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: sa });
  await issueProxyCerts(join(dir, 'ca'), join(dir, 'certs'), [id('sleep'), id('httpbin')]);
  writeFileSync(join(dir, 'zt.json'), JSON.stringify(config));
  const echo = spawn('ip', ['netns', 'exec', D, process.execPath, '-e', ECHO, join(dir, 'echo-up')], { stdio: 'ignore' });
  children.push(echo);
  const { openSync } = await import('node:fs');
  const out = openSync(join(dir, 'zt.log'), 'a');
  const zt = spawn('ip', ['netns', 'exec', Z, process.execPath, MAIN, '--config', join(dir, 'zt.json'), '--ready-file', join(dir, 'ready')], { stdio: ['ignore', out, out] });
  children.push(zt);
  await waitFor(join(dir, 'ready'));
  await waitFor(join(dir, 'echo-up'));
});

t.test('Service VIP through TPROXY: endpoint chosen, client IP preserved', async (t) => {
  const reply = client('10.96.0.50', 80, 'hello');
  t.equal(reply, 'peer=10.77.0.2 local=10.77.2.2:8080;hello', 'the legacy pod saw the client pod IP on its target port');
  const line = logLines().find((l) => l.msg === 'connection complete' && l['dst.service']);
  t.match(line, {
    direction: 'outbound', via: 'tcp', spoofed: true, 'src.workload': 'sleep', 'dst.addr': '10.77.2.2:8080',
    'dst.service': 'legacy.default.svc.cluster.local', bytes_sent: 5,
  });
});

t.test('same-node ambient destination: fast path, RBAC', async (t) => {
  t.equal(client('10.77.2.3', 80, 'x'), 'peer=10.77.0.2 local=10.77.2.3:80;x');
  t.equal(client('10.77.2.3', 9999, 'x'), 'ERR ECONNRESET', 'deny-9999 resets the connection (curl: exit 56), no bytes from the pod');
  t.match(await waitForLine('connection denied', () => true), { via: 'direct-local', policy: undefined, reason: /no ALLOW policy matched \(default\/deny-9999\)/ });
});

t.test('admin, metrics and readiness inside the ztunnel netns', async (t) => {
  const dump = JSON.parse(inNs(Z, 'curl', '-s', 'http://127.0.0.1:15000/config_dump'));
  t.equal(dump.workloads['10.77.2.3'].name, 'httpbin');
  t.equal(inNs(Z, 'curl', '-s', 'http://10.77.0.1:15021/healthz/ready'), 'ready\n');
  const metrics = inNs(Z, 'curl', '-s', 'http://10.77.0.1:15020/metrics');
  t.match(metrics, /istio_tcp_connections_opened_total\{reporter="source",source_workload="sleep",.*destination_workload="legacy",.*destination_service="legacy.default.svc.cluster.local",response_flags="-"\} 1/);
  t.match(metrics, /istio_tcp_connections_denied_total\{.*destination_workload="httpbin".*response_flags="DENY"\} 1/);
  t.match(dump.config, { version: 1, hash: /^[0-9a-f]{16}$/ }, 'config_dump shows the config version');
});

t.test('config reload: file change and SIGHUP; the new policy applies', async (t) => {
  t.equal(client('10.77.2.3', 80, 'before'), 'peer=10.77.0.2 local=10.77.2.3:80;before', 'port 80 allowed under version 1');
  config.policies.push({ name: 'deny-80', namespace: 'default', scope: 'Namespace', action: 'Deny', groups: [[[{ destination_ports: [80] } as never]]] });
  rewriteConfig();
  t.match(await waitForLine('config reloaded', (l) => l.trigger === 'file'), { version: 2 }, 'the renamed-in file was picked up');
  const zt = children[1];
  zt.kill('SIGHUP');
  t.match(await waitForLine('config reloaded', (l) => l.trigger === 'SIGHUP'), { version: 3 }, 'SIGHUP reloads');
  t.equal(JSON.parse(inNs(Z, 'curl', '-s', 'http://127.0.0.1:15000/config_dump')).config.version, 3);
  t.equal(client('10.77.2.3', 80, 'after'), 'ERR ECONNRESET', 'port 80 is now reset');
  t.match(await waitForLine('connection denied', (l) => l.policy === 'default/deny-80'), { reason: 'denied by DENY policy default/deny-80' });
  t.equal(zt.exitCode, null, 'the same process kept serving');
});

t.test('SIGTERM stops the process', async (t) => {
  const zt = children[1];
  const exited = new Promise<number | null>((r) => zt.once('exit', (code) => r(code)));
  // `ip netns exec` execs node, so the child pid is the ztunnel itself.
  zt.kill('SIGTERM');
  t.equal(await exited, 0);
});
