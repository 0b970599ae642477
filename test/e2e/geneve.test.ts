// The userspace Geneve daemon between two namespaces, the way the lab uses it when the kernel
// has no geneve module: a "node" netns with istioin/istioout TAPs and a "ztunnel" netns with
// pistioin/pistioout, joined by a veth, and ONE daemon (with the lab's V8 flags) serving both
// ends (here from the node netns; the lab runs it in the underlay with every end by name). Checks that ARP+ICMP and a multi-MB TCP stream cross the tunnel
// intact, that tshark decodes the veth traffic as Geneve VNI 1000/1001 with valid outer UDP
// checksums, that foreign senders and unknown VNIs are dropped, that the one process stays
// small, and that SIGTERM stops it cleanly. Then in a lab: one daemon for all nodes, in the
// underlay netns with its sockets in every node and ztunnel pod; SIGKILLed it is restarted by
// the supervisor and requests cross again; an end it cannot open shows in `lab status`
// (BACKOFF, UNHEALTHY) and its log, and cuts every node; `lab down` leaves nothing.
// Needs root and dist/ (npx tsc -p tsconfig.json).
import t from 'tap';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeFrame, readCaptureFile } from '../../src/trace/pcap.js';
import { waitFor, lab, leftovers, upJson, curlIn, podIp, linkStats } from './helpers.js';
import { GENEVE_DAEMON_FLAGS } from '../../src/plan/kinds/ztunnel.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DAEMON = join(root, 'dist', 'ambient', 'geneve-userspace.js');
const fixture = (f: string) => join(root, 'test', 'fixtures', f);
const N = 'alt-gnv-n';
const Z = 'alt-gnv-z';
const VN = 'alt-gnv-vn';
const VZ = 'alt-gnv-vz';

if (!existsSync(DAEMON)) {
  t.fail(`${DAEMON} missing: run \`npx tsc -p tsconfig.json\` first`);
  process.exit(1);
}

const sh = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
const shAsync = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args, { maxBuffer: 64 << 20 })).stdout;
const ipBatch = (ns: string, lines: string[]) => sh('ip', ['-n', ns, '-batch', '-'], lines.join('\n') + '\n');
/** Resolves with what `p` resolves to, or 'timeout' after `ms`. */
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
const pingCmd = (() => {
  try {
    sh('ping', ['-V']);
    return ['ping'];
  } catch {
    return ['busybox', 'ping']; // iputils-ping is not always installed
  }
})();
const linkCount = (ns: string, dev: string, stat: string) =>
  Number(sh('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${dev}/statistics/${stat}`]).trim());

const tmp = mkdtempSync(join(tmpdir(), 'alt-gnv-'));
const children: ChildProcess[] = [];

function cleanup() {
  for (const ns of [N, Z]) if (existsSync(`/run/netns/${ns}`)) sh('ip', ['netns', 'del', ns]);
}
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

// Leftovers can only be ours (the alt-gnv- prefix belongs to this test).
cleanup();
sh('ip', ['netns', 'add', N]);
sh('ip', ['netns', 'add', Z]);
sh('ip', ['link', 'add', VN, 'netns', N, 'type', 'veth', 'peer', 'name', VZ, 'netns', Z]);
const tapLines = (taps: Array<[string, string]>) =>
  taps.flatMap(([dev, cidr]) => [`tuntap add dev ${dev} mode tap`, `addr add ${cidr} dev ${dev}`, `link set ${dev} mtu 1450 up`]);
// No IPv6 chatter (router solicitations, MLD) on the TAPs: the checks below count frames.
for (const ns of [N, Z]) {
  sh('ip', ['netns', 'exec', ns, 'sh', '-c', 'for k in all default; do echo 1 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; done']);
}
ipBatch(N, [
  'link set lo up', `addr add 10.98.0.1/24 dev ${VN}`, `link set ${VN} up`,
  ...tapLines([['istioin', '192.168.126.1/30'], ['istioout', '192.168.127.1/30']]),
]);
ipBatch(Z, [
  'link set lo up', `addr add 10.98.0.2/24 dev ${VZ}`, `addr add 10.98.0.3/24 dev ${VZ}`, `link set ${VZ} up`,
  ...tapLines([['pistioin', '192.168.126.2/30'], ['pistioout', '192.168.127.2/30']]),
]);

interface Daemon {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

async function startDaemon(ns: string, args: string[]): Promise<Daemon> {
  const ready = join(tmp, `${ns}.ready`);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...GENEVE_DAEMON_FLAGS, DAEMON, ...args, '--ready-file', ready], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`daemon in ${ns} exited ${child.exitCode}: ${out}`);
    return existsSync(ready);
  }, 5000, `the daemon in ${ns} to be ready`);
  return { child, log: () => out, exited };
}

/** The daemon's own PID (the child is `ip netns exec`, which execs node: the same PID). */
const vmRssKb = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

let d: Daemon;

t.before(async () => {
  // As the lab plans it: the node end in the daemon's own netns, the ztunnel end in Z by setns.
  d = await startDaemon(N, [
    '--end', 'local=10.98.0.1,remote=10.98.0.2,tap=istioin:1000,tap=istioout:1001',
    '--end', `netns=${Z},local=10.98.0.2,remote=10.98.0.1,tap=pistioin:1000,tap=pistioout:1001`,
  ]);
});

t.test('one process serves both ends: nothing of ours runs in the ztunnel netns', async (t) => {
  const inZ = sh('ip', ['netns', 'pids', Z]).trim();
  t.equal(inZ, '', 'no process in the ztunnel netns');
  const ready = JSON.parse(readFileSync(join(tmp, `${N}.ready`), 'utf8'));
  t.equal(ready.pid, d.child.pid, 'the ready file names the daemon');
  t.same(ready.ends.map((e: { netns?: string; local: string }) => [e.netns, e.local]), [[undefined, '10.98.0.1'], [Z, '10.98.0.2']], 'both ends, the second in Z');
  // Its UDP sockets live where the ends are: each netns has exactly one 6081 socket, on its own address.
  t.match(sh('ip', ['netns', 'exec', N, 'ss', '-unaH', 'sport', '= :6081']), /10\.98\.0\.1:6081/, 'node end bound in N');
  t.match(sh('ip', ['netns', 'exec', Z, 'ss', '-unaH', 'sport', '= :6081']), /10\.98\.0\.2:6081/, 'ztunnel end bound in Z');
});

t.test('ping crosses both tunnels; tshark decodes Geneve VNI 1001/1000 and the inner packets', async (t) => {
  const pcap = join(tmp, 'ping.pcap');
  const dump = spawn('ip', ['netns', 'exec', N, 'tcpdump', '-i', VN, '-nn', '-U', '--immediate-mode', '-Z', 'root', '-w', pcap, 'udp', 'port', '6081'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(dump);
  await new Promise<void>((res, rej) => {
    dump.stderr!.on('data', (d) => String(d).includes('listening on') && res());
    dump.on('exit', (c) => rej(new Error(`tcpdump exited ${c}`)));
  });
  const p1 = await shAsync('ip', ['netns', 'exec', N, ...pingCmd, '-c', '3', '-W', '2', '192.168.127.2']);
  t.match(p1, /3 packets transmitted, 3 (packets )?received/, 'ping over istioout/pistioout');
  const p2 = await shAsync('ip', ['netns', 'exec', N, ...pingCmd, '-c', '3', '-W', '2', '192.168.126.2']);
  t.match(p2, /3 packets transmitted, 3 (packets )?received/, 'ping over istioin/pistioin');
  // ping saw every reply, so all 12 ICMP packets have crossed the veth; stop tcpdump once it
  // has written them (it writes per packet, -U), or the counts below would miss the last ones.
  const icmpWritten = () => {
    const cap = readCaptureFile(readFileSync(pcap));
    return cap.frames.filter((f) => decodeFrame(f.linktype, f.data).ip?.geneve?.inner?.proto === 1).length;
  };
  await waitFor(() => icmpWritten() >= 12, 5000, 'tcpdump to write the 12 ICMP packets');
  const dumped = new Promise((r) => dump.once('exit', r));
  dump.kill('SIGINT');
  await dumped;

  // Tab-separated: ip.src lists outer and inner source comma-separated.
  const fields = await shAsync('tshark', [
    '-r', pcap, '-T', 'fields', '-E', 'separator=/t',
    '-e', 'geneve.vni', '-e', 'udp.dstport', '-e', 'udp.checksum', '-e', 'eth.type', '-e', 'icmp.type', '-e', 'ip.src',
  ]);
  const rows = fields.trim().split('\n').map((l) => l.split('\t'));
  if (!t.ok(rows.length >= 14, `${rows.length} packets decoded (2 ARP exchanges, 12 ICMP)`)) t.comment(fields);
  // tshark prints the VNI in hex (0x0003e9). On a veth the checksum is left to "offload",
  // so the capture holds the partial sum, not the final one: assert only that it is in use.
  t.ok(rows.every((r) => r[1] === '6081' && Number(r[2]) !== 0), 'every packet: UDP to 6081, checksum in use');
  const icmp = (vni: number, type: string) => rows.filter((r) => Number(r[0]) === vni && r[4] === type);
  t.equal(icmp(1001, '8').length, 3, '3 echo requests on VNI 1001');
  t.equal(icmp(1001, '0').length, 3, '3 echo replies on VNI 1001');
  t.equal(icmp(1000, '8').length, 3, '3 echo requests on VNI 1000');
  t.equal(icmp(1000, '0').length, 3, '3 echo replies on VNI 1000');
  t.ok(rows.some((r) => Number(r[0]) === 1001 && r[3].endsWith('0x0806')), 'ARP crossed the tunnel as well');
  t.equal(icmp(1001, '8')[0]?.[5], '10.98.0.1,192.168.127.1', 'outer then inner source');
  t.equal(icmp(1001, '0')[0]?.[5], '10.98.0.2,192.168.127.2', 'reply: outer then inner source');
  const filtered = await shAsync('tshark', ['-r', pcap, '-Y', 'geneve.vni == 1001 && icmp']);
  t.equal(filtered.trim().split('\n').length, 6, "display filter 'geneve.vni == 1001 && icmp' matches 6 packets");

  const verbose = await shAsync('tshark', ['-r', pcap, '-V', '-c', '1']);
  t.match(verbose, /Generic Network Virtualization Encapsulation/, 'tshark -V: Geneve layer');
  t.match(verbose, /Virtual Network Identifier \(VNI\): 0x0003e9/, 'tshark -V: VNI 1001');
  t.match(verbose, /Protocol Type: Transparent Ethernet bridging \(0x6558\)/, 'tshark -V: inner Ethernet');
});

t.test('a multi-MB TCP stream crosses the tunnel intact; bulk rate for the record', async (t) => {
  const sink = spawn('ip', ['netns', 'exec', Z, process.execPath, fixture('geneve-sink.mjs'), '192.168.127.2', '5001'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(sink);
  await new Promise<void>((res) => sink.stdout!.on('data', (d) => String(d).includes('ready') && res()));
  const send = async (bytes: number) =>
    JSON.parse(await shAsync('ip', ['netns', 'exec', N, process.execPath, fixture('geneve-source.mjs'), '192.168.127.2', '5001', String(bytes)]));

  const small = await send(8 << 20);
  t.equal(small.reply.bytes, 8 << 20, 'all bytes arrived');
  t.equal(small.reply.sha256, small.sha256, 'same bytes, same order');

  const frames0 = linkCount(N, 'istioout', 'tx_packets');
  const bulk = await send(200e6);
  const frames = linkCount(N, 'istioout', 'tx_packets') - frames0;
  t.equal(bulk.reply.sha256, bulk.sha256, '200 MB intact');
  const rssMiB = vmRssKb(d.child.pid!) / 1024;
  t.comment(
    `bulk TCP over userspace Geneve: ${bulk.mbitPerS.toFixed(0)} Mbit/s, ` +
      `${Math.round(frames / bulk.seconds)} frames/s out of istioout (${frames} frames in ${bulk.seconds.toFixed(2)} s); daemon RSS ${rssMiB.toFixed(1)} MiB`,
  );
  // The two-daemon, four-isolate design held 85 MiB each; one thread, small young generation: ~50.
  t.ok(rssMiB < 64, `one daemon for both ends stays small after 200 MB: ${rssMiB.toFixed(1)} MiB RSS (< 64)`);
  sink.kill();
});

t.test('packets from a foreign sender or with an unknown VNI are not delivered', async (t) => {
  // A broadcast frame with an experimental EtherType: counted in the TAP's rx_packets when written.
  const frame = 'ffffffffffff' + '020000000099' + '88b5' + '00'.repeat(46);
  const sendFrom = (src: string, vni: number) => {
    const payload = '00006558' + vni.toString(16).padStart(6, '0') + '00' + frame;
    const code = `const s=require('dgram').createSocket('udp4');s.bind({address:'${src}'},()=>s.send(Buffer.from('${payload}','hex'),6081,'10.98.0.1',()=>s.close()))`;
    sh('ip', ['netns', 'exec', Z, process.execPath, '-e', code]);
  };
  const rx = () => linkCount(N, 'istioout', 'rx_packets');
  // The daemon reads its one UDP socket in order: once a good frame sent after the bad one has
  // reached the TAP, the bad one has been handled, so "not delivered" is a fact, not a guess.
  const deliveredBeforeMarker = async (src: string, vni: number) => {
    const before = rx();
    sendFrom(src, vni);
    sendFrom('10.98.0.2', 1001);
    await waitFor(() => rx() > before, 5000, 'the marker frame to reach istioout');
    return rx() - before - 1;
  };

  t.equal(await deliveredBeforeMarker('10.98.0.3', 1001), 0, 'not from --remote: dropped');
  t.equal(await deliveredBeforeMarker('10.98.0.2', 4242), 0, 'unknown VNI: dropped');
  const before = rx();
  sendFrom('10.98.0.2', 1001);
  await waitFor(() => rx() > before, 5000, 'the frame to reach istioout');
  t.equal(rx() - before, 1, 'from --remote on VNI 1001: delivered to istioout');
});

t.test('SIGTERM stops the daemon cleanly and it logs its counters', async (t) => {
  const t0 = Date.now();
  d.child.kill('SIGTERM');
  const code = await within(d.exited, 3000);
  t.equal(code, 0, `daemon exited 0 (${Date.now() - t0} ms)`);
  const lines = d.log().trim().split('\n').map((l) => JSON.parse(l));
  const last = lines.at(-1);
  t.equal(last.msg, 'stopped (SIGTERM)', 'last log line says why it stopped');
  const [node, ztunnel] = last.stats.ends as Array<{ netns?: string; taps: Record<string, { frames: number }>; received: Record<string, number> }>;
  t.equal(ztunnel.netns, Z, 'second end: the ztunnel netns');
  for (const e of [node, ztunnel]) {
    t.ok(Object.values(e.taps).every((s) => s.frames > 0), `every TAP of ${e.netns ?? 'the node end'} carried frames (${Object.keys(e.taps)})`);
  }
  t.equal(lines.filter((l) => l.msg === 'attached to TAP').length, 4, 'logged 4 TAP attaches');
  t.equal(node.received.wrongRemote, 1, 'node end counted the foreign sender');
  t.equal(node.received.unknownVni, 1, 'node end counted the unknown VNI');
  t.equal(ztunnel.received.wrongRemote + ztunnel.received.unknownVni, 0, 'the ztunnel end saw neither');
  t.equal(sh('ip', ['netns', 'exec', N, 'ss', '-unaH', 'sport', '= :6081']).trim(), '', 'its sockets are closed');
});

t.test('in a lab: one daemon for every node; killed, the supervisor restarts it; a failing end is visible', async (t) => {
  const NAME = 'gv-lab';
  t.teardown(() => { lab(['down', NAME]); });
  t.same(leftovers(NAME), [], 'no earlier lab of this name');
  const up = upJson('test/fixtures/topologies/mesh.yaml', NAME);
  if (!t.ok(up.ok, `lab up works\n${up.stderr}`)) return;
  const status = () => JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout);
  if (status().tunnel !== 'userspace') return void t.comment('this kernel has Geneve: the lab runs no userspace daemon');
  const geneve = () => status().processes.filter((p: { role: string }) => p.role === 'geneve');
  const nsOf = (node: string) => ({ node: `al-${NAME}-node-${node}`, zt: `al-${NAME}-pod-istio-system.ztunnel-${node}` });
  // `ip netns identify PID`: the namespace the process really runs in.
  t.same(geneve().map((p: { id: string; pid: number }) => [p.id, sh('ip', ['netns', 'identify', String(p.pid)]).trim()]), [
    ['geneve', `al-${NAME}-underlay`],
  ], 'one daemon for the lab, in the underlay netns');
  const gv = geneve()[0];
  for (const node of ['node-a', 'node-b']) {
    const ns = nsOf(node);
    const zt = status().processes.find((p: { id: string }) => p.id === `ztunnel/${node}`);
    t.same(sh('ip', ['netns', 'pids', ns.zt]).trim().split('\n').map(Number), [zt.pid], `${node}: the ztunnel pod runs its ztunnel only`);
    t.notOk(sh('ip', ['netns', 'pids', ns.node]).trim().split('\n').map(Number).includes(gv.pid), `${node}: the daemon does not run in the node netns`);
    // Yet its sockets are there: one 6081 socket per end, in the end's netns, owned by the daemon.
    for (const n of [ns.node, ns.zt]) t.match(sh('ip', ['netns', 'exec', n, 'ss', '-unapH', 'sport', '= :6081']), new RegExp(`pid=${gv.pid},`), `${n}: the daemon's UDP socket`);
  }

  // A new connection from an ambient pod always leaves by its node's istioout and reaches the
  // ztunnel by pistioout: from sleep (node-a) and sleep-b (node-b), every node's outbound pair.
  const crosses = (why: string) => {
    for (const [pod, node] of [['sleep', 'node-a'], ['sleep-b', 'node-b']]) {
      const ns = nsOf(node);
      const before = [linkStats(ns.node, 'istioout').tx, linkStats(ns.zt, 'pistioout').rx];
      const r = curlIn(NAME, pod, 'http://httpbin:8000/ip');
      t.equal(r.code, 0, `${why}: curl from ${pod} works\n${r.stderr}`);
      t.same(JSON.parse(r.stdout || '{}'), { origin: podIp(up.summary, `default/${pod}`) }, `${why}: ${pod}'s source IP preserved`);
      const after = [linkStats(ns.node, 'istioout').tx, linkStats(ns.zt, 'pistioout').rx];
      t.ok(after[0] > before[0] && after[1] > before[1], `${why}: ${node}: packets left istioout and reached pistioout`);
    }
  };
  // The inbound pair: the first connection to httpbin opens an HBONE tunnel into node-b (later
  // requests reuse it, and its packets bypass the tunnels), through istioin to pistioin.
  const nb = nsOf('node-b');
  const in0 = [linkStats(nb.node, 'istioin').tx, linkStats(nb.zt, 'pistioin').rx];
  crosses('at start');
  const in1 = [linkStats(nb.node, 'istioin').tx, linkStats(nb.zt, 'pistioin').rx];
  t.ok(in1[0] > in0[0] && in1[1] > in0[1], 'at start: node-b: HBONE left istioin and reached pistioin');

  process.kill(gv.pid, 'SIGKILL');
  const after = await waitFor(() => { const p = geneve()[0]; return p.pid !== gv.pid && p.ready && p; }, 15_000, 'status to show a new, ready geneve');
  t.match(after, { alive: true, ready: true, restarts: 1, note: /^died at / }, 'restarted, counted, and the death is on record');
  crosses('after the restart');

  // A failure of the one daemon is a failure of every node, and says so. Hold node-b's istioin
  // while the daemon dies: the next one cannot open that end, exits 1 naming it, and backs off;
  // meanwhile node-a's tunnels are down too (the blast radius the README states).
  const holder = spawn('ip', ['netns', 'exec', nsOf('node-b').node, process.execPath, fixture('geneve-tap-holder.mjs'), 'istioin'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(holder);
  let held = '';
  holder.stdout!.on('data', (d) => (held += d));
  await waitFor(() => held.includes('waiting'), 10_000, 'the TAP holder to start');
  process.kill(after.pid, 'SIGKILL');
  await waitFor(() => held.includes('holding'), 5000, 'the holder to take istioin');
  const down = await waitFor(() => { const s = status(); const p = s.processes.find((x: { role: string }) => x.role === 'geneve'); return !s.healthy && p.backoffUntil && /^exit 1 /.test(p.note) && { s, p }; }, 15_000, 'status: the daemon backing off, the lab unhealthy');
  t.match(down.p, { alive: false, ready: false, note: /exit 1 at .*backing off until/ }, 'lab status --json: dead, its exit code, backing off');
  // The daemon is retried between back-offs (and dies again): wait for a look during one.
  const text = await waitFor(() => { const o = lab(['status', '--lab', NAME]).stdout; return /BACKOFF/.test(o) && o; }, 20_000, 'lab status to show the back-off');
  t.match(text, /UNHEALTHY[\s\S]*\ngeneve\s+\d+\s+BACKOFF\s+\d+\s+exit 1 at /, 'lab status: UNHEALTHY, geneve BACKOFF after exit 1');
  const log = readFileSync(down.p.log, 'utf8');
  t.match(log, new RegExp(`cannot open the end in ${nsOf('node-b').node} \\(local 10\\.244\\.1\\.1\\): ioctl TUNSETIFF istioin: EBUSY`), 'its log names the end that failed');
  const cut = lab(['exec', '--lab', NAME, 'sleep', '--', 'curl', '-s', '-m', '2', 'http://httpbin:8000/ip']);
  t.equal(cut.code, 28, `node-a's traffic is cut as well (curl times out, exit 28): one daemon carries every node (${cut.stderr.trim()})`);

  holder.kill('SIGTERM');
  await waitFor(() => { const p = geneve()[0]; return p.alive && p.ready && p; }, 40_000, 'the daemon back once the TAP is free');
  t.ok(status().healthy, 'the lab is healthy again');
  crosses('after the back-off');

  t.equal(lab(['down', NAME]).code, 0, 'lab down');
  t.same(leftovers(NAME), [], 'nothing left: namespaces, files, processes (the restarted daemon included)');
});
