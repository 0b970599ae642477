// The lab on kernel Geneve (`tunnel: kernel`). The machines here have no geneve module,
// so this boots a stock Debian kernel under qemu (test/vm/), with the host root shared
// read-only, and runs test/vm/guest-ambient.sh inside: lab up, the Geneve devices, one
// request sleep -> httpbin captured on the wire, rule counters, lab down. One boot for
// everything; the assertions here read the guest's output.
//
// Skips (with the reason) when qemu is missing or the kernel cannot be fetched; with
// CI=true both are failures, since CI must prove the kernel path.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { REPO } from './helpers.js';
import { guestSections, listedRules, vniCounts } from '../vm/guest-output.js';

const repo = realpathSync(REPO);
const VM = resolve(repo, 'test/vm');
const CI = /^(true|1)$/i.test(process.env.CI ?? '');
// Generous against TCG: the guest run measured ~2-3 min on a 2-CPU machine.
const VM_TIMEOUT_S = Number(process.env.VM_TIMEOUT ?? 480);
const LOG = resolve(tmpdir(), 'ambient-lab-kernel-vm.log');

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (qemu 9p share of / and the lab inside)';
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status !== 0) {
    return 'qemu-system-x86_64 is not installed (scripts/setup.sh --with-vm installs it)';
  }
  const started = Date.now();
  const fetch = spawnSync('bash', [resolve(VM, 'fetch-kernel.sh')], { encoding: 'utf8', timeout: 600_000 });
  const said = `${fetch.stdout ?? ''}${fetch.stderr ?? ''}`.trim().split('\n');
  t.comment(`fetch-kernel.sh: ${((Date.now() - started) / 1000).toFixed(1)} s: ${said[said.length - 1]}`);
  // One line: tap shows only the first line of a skip reason.
  if (fetch.status !== 0) return `test/vm/fetch-kernel.sh failed (exit ${fetch.status}): ${said.slice(-3).join(' | ')}`;
  if (!existsSync(resolve(repo, 'dist/cli/main.js'))) return 'dist/ is not built (npm run build)';
  return undefined;
}

interface VmRun { code: number | null; stdout: string; stderr: string; seconds: number }

let vmRunning: ReturnType<typeof spawn> | undefined;
// If tap gives up on us, leave no qemu behind (run-in-vm.sh kills it on TERM).
t.teardown(() => { if (vmRunning && vmRunning.exitCode === null) vmRunning.kill('SIGTERM'); });

/** Runs test/vm/<script> in one VM boot, with LAB_REPO set to this checkout. */
function runInVm(script: string): Promise<VmRun> {
  return new Promise((done) => {
    const started = Date.now();
    const vm = spawn('bash', [resolve(VM, 'run-in-vm.sh'), '-'], {
      cwd: repo,
      env: { ...process.env, VM_TIMEOUT: String(VM_TIMEOUT_S), VM_MEM: '2048', VM_TIMING: '1' },
    });
    let stdout = '';
    let stderr = '';
    vm.stdout.on('data', (d) => { stdout += d; });
    vm.stderr.on('data', (d) => { stderr += d; });
    vmRunning = vm;
    vm.on('close', (code) => done({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
    vm.stdin.end(`export LAB_REPO='${repo.replace(/'/g, `'\\''`)}'\n${readFileSync(resolve(VM, script), 'utf8')}`);
  });
}

const TITLE = 'ambient mesh on kernel Geneve, inside a VM';
const reason = whyNot();
if (reason && CI) t.fail(`${TITLE}: cannot run in CI: ${reason}`);
else if (reason) t.test(TITLE, { skip: reason }, () => {});
else t.test(TITLE, { timeout: (VM_TIMEOUT_S + 60) * 1000 }, async (t) => {
  const run = await runInVm('guest-ambient.sh');
  // The whole guest transcript, for whoever debugs a failure (the assertions show excerpts).
  writeFileSync(LOG, `${run.stdout}\n----- stderr -----\n${run.stderr}`);
  t.comment(`guest output: ${LOG}`);
  const s = guestSections(run.stdout);
  t.comment(`VM run: ${run.seconds.toFixed(1)} s in all; ${run.stderr.split('\n').find((l) => l.startsWith('run-in-vm:')) ?? ''}`);
  t.comment(`in guest: ${s.get('timing')?.trim() ?? '(no timings)'}`);
  const failedSteps = (run.stdout.match(/^FAILED: .*$/gm) ?? []);
  if (failedSteps.length) t.comment(`guest steps that failed:\n${failedSteps.join('\n')}`);
  t.not(run.code, 124, `the VM finished within ${VM_TIMEOUT_S} s`);
  t.not(run.code, 125, 'the VM booted and ran the script', { stderr: run.stderr.slice(-3000) });
  t.ok(s.has('result'), 'the guest script ran to its end');

  const upRc = s.get('up-rc')?.trim();
  t.equal(upRc, '0', 'lab up exits 0 in the guest', { stderr: s.get('up-stderr') });
  let summary: { tunnel?: string; pods?: Array<{ name: string; ip: string; node: string }> } = {};
  try { summary = JSON.parse(s.get('up') ?? ''); } catch { t.fail(`lab up --json printed no JSON:\n${s.get('up')}`); }
  t.equal(summary.tunnel, 'kernel', 'the lab reports kernel Geneve');
  const sleepIp = summary.pods?.find((p) => p.name === 'default/sleep')?.ip;
  t.ok(sleepIp, 'the summary lists the sleep pod and its IP');

  const links = s.get('links') ?? '';
  t.match(links, /^node-a istioin: geneve id 1000 remote /m, 'node-a istioin is a kernel geneve device, VNI 1000');
  t.match(links, /^node-a istioout: geneve id 1001 remote /m, 'node-a istioout is a kernel geneve device, VNI 1001');
  t.match(links, /^ztunnel pistioin: geneve id 1000 remote /m, 'ztunnel pod pistioin: geneve VNI 1000');
  t.match(links, /^ztunnel pistioout: geneve id 1001 remote /m, 'ztunnel pod pistioout: geneve VNI 1001');

  t.equal(s.get('curl-rc')?.split('\n')[0], '0', 'curl from sleep exits 0', { output: s.get('curl-rc') });
  let reply: { origin?: string } = {};
  try { reply = JSON.parse(s.get('curl') ?? ''); } catch { t.fail(`httpbin /ip reply is not JSON: ${JSON.stringify(s.get('curl'))}`); }
  // A missing IP on either side must not compare equal (undefined === undefined).
  t.equal(reply.origin ?? '(no origin in the reply)', sleepIp ?? '(no sleep IP in the summary)',
    'httpbin saw the sleep pod IP as the source (HBONE kept the original source)');

  const vnis = vniCounts(s.get('geneve-vnis') ?? '');
  t.ok((vnis.get(1001) ?? 0) > 0, 'tcpdump decoded Geneve VNI 1001 (0x3e9) on node-a\'s ztunnel veth', { capture: s.get('geneve') });
  t.match(s.get('geneve') ?? '', /Geneve, Flags \[[^\]]*\], vni 0x3e9/, 'tcpdump decodes the capture as Geneve');
  const syn = new RegExp(`vni 0x3e9: IP ${(sleepIp ?? 'no-sleep-ip').replace(/\./g, '\\.')}\\.\\d+ > [\\d.]+\\.8000: Flags \\[S\\]`, 'm');
  t.match(s.get('geneve-tcp') ?? '', syn, `the request's SYN (sleep -> Service VIP:8000) rode istioout, VNI 1001, to the ztunnel pod`);

  const mark = listedRules(s.get('node-a-mangle') ?? '')
    .filter((r) => r.chain === 'ztunnel-PREROUTING' && /match-set ztunnel-pods-ips src MARK or 0x100\b/.test(r.text));
  t.equal(mark.length, 1, 'node-a has the ztunnel-PREROUTING rule that marks enrolled pods\' TCP 0x100');
  t.ok((mark[0]?.pkts ?? 0) > 0, `that 0x100 rule counted packets (${mark[0]?.pkts})`, { listing: s.get('node-a-mangle') });

  const tproxy = listedRules(s.get('ztunnel-mangle') ?? '').filter((r) => /TPROXY redirect [\d.]+:15001\b/.test(r.text));
  t.ok(tproxy.length >= 1, 'the ztunnel pod has a TPROXY rule onto :15001');
  t.ok(tproxy.reduce((n, r) => n + r.pkts, 0) > 0, `the :15001 TPROXY rule counted packets (${tproxy.map((r) => r.pkts).join(',')})`, { listing: s.get('ztunnel-mangle') });

  t.match(s.get('modules') ?? '', /\bgeneve\b/, 'the geneve module was autoloaded in the guest');
  t.equal(s.get('down-rc')?.trim(), '0', 'lab down exits 0 in the guest');
  t.equal(s.get('leftovers')?.trim(), '', 'lab down leaves no namespace behind');
});
