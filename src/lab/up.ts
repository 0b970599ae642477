// `lab up` as one straight line: load -> validate -> probe the host -> plan -> record state ->
// apply -> start processes -> ready. Everything up to the plan touches nothing (prepareUp);
// the state is recorded from the finished build before the first object is created, so
// `lab down` can always remove what an interrupted `up` left.
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { loadTopology } from '../topology/load.js';
import { planAddresses, type LabPlan } from '../topology/address-plan.js';
import { planLab, type LabBuild } from '../plan/lab-build.js';
import type { HostFacts } from '../plan/host-facts.js';
import { labStateDir, readState, writeState, type LabState } from '../state/store.js';
import { ipBatch, nsWrap, runBatch, runStages } from '../host/run.js';
import { netnsExists, findOwnedNetns } from '../host/netns.js';
import { configScript, isEmptyConfig } from '../host/netns-config.js';
import { probeHost } from '../host/probe.js';
import { startProcess, startProcesses, launchOrder, waitReady } from '../host/processes.js';
import { UserError } from '../util/errors.js';
import { checkLabName } from '../topology/lab-name.js';
import { fileLogger } from '../util/log.js';
import { distDir } from './paths.js';
import { prepareOwnDirs } from './certificates.js';
import { issueCertificatesInWorker } from './cert-worker.js';

export interface UpStep {
  /** Stable key (`AMBIENT_LAB_KILL_AT_STEP`, timings). */
  key: UpStepKey;
  title: string;
  run: () => Promise<void>;
}

/** The steps that change the machine, in order. */
export const UP_STEP_KEYS = ['state', 'netns', 'links', 'rules', 'files', 'processes', 'ready', 'supervisor'] as const;
export type UpStepKey = (typeof UP_STEP_KEYS)[number];

export interface UpContext {
  plan: LabPlan;
  build: LabBuild;
  facts: HostFacts;
  state: LabState;
  stateDir: string;
  log: Logger;
  noMesh: boolean;
  /** Wall ms of each step that changes the machine (UP_STEP_KEYS). */
  timings: Record<string, number>;
  /** Stops work still running beside the steps (the certificate worker) before a failed `up` is removed. */
  stopBackground?: () => Promise<void>;
  /**
   * Wall ms before the first step: `start` is Node's own start-up and the CLI's imports (from
   * process start to prepareUp), then load, probe, plan and check (the clash checks).
   */
  prepareMs: Record<string, number>;
  /** ms after the ready step began at which each waited-for process was seen ready. */
  readyMs: Record<string, number>;
}

export interface UpOptions {
  /** Overrides the topology's name (positional NAME of `lab up`, validated by the CLI). */
  name?: string;
  /** No istio-cni rules, no ztunnels: every pod behaves as `mode: none` (a baseline). */
  noMesh?: boolean;
  /** Only plan (`--dry-run`): skip the checks against labs that are already up. */
  dryRun?: boolean;
}

/** load -> validate -> probe -> plan. Throws UserError; creates nothing. */
export async function prepareUp(file: string, opts: UpOptions = {}): Promise<UpContext> {
  const prepareMs: Record<string, number> = { start: round(performance.now()) };
  let t = performance.now();
  const lap = (key: string) => {
    const now = performance.now();
    prepareMs[key] = round(now - t);
    t = now;
  };
  const topology = loadTopology(file);
  // NAME replaces the validated `name:`, so it must pass the same rule (callers besides the CLI too).
  if (opts.name !== undefined) topology.name = checkLabName(opts.name, 'NAME');
  // Without the mesh nothing redirects or proxies, so every pod really is `mode: none`.
  if (opts.noMesh) for (const p of topology.pods) p.mode = 'none';
  const plan = planAddresses(topology);
  const lab = plan.lab;
  if (!opts.dryRun && readState(lab)) {
    throw new UserError(`lab "${lab}" is already up (state in ${labStateDir(lab)})`, `run \`lab down ${lab}\` first, or give this one another name: \`lab up ${file} NAME\``);
  }
  const stateDir = labStateDir(lab);
  lap('load');
  const facts = await probeHost();
  lap('probe');
  const build = planLab(plan, facts, { stateDir, distDir: distDir(), node: process.execPath }, { mesh: !opts.noMesh });
  lap('plan');
  if (!opts.dryRun) {
    const clash = build.netns.map((n) => n.netns).filter(netnsExists);
    const owned = await findOwnedNetns(lab);
    if (clash.length || owned.length) {
      throw new UserError(
        `network namespaces of lab "${lab}" already exist: ${[...new Set([...clash, ...owned.map((o) => o.netns)])].slice(0, 5).join(', ')}`,
        `a previous lab "${lab}" was not removed: run \`lab down ${lab}\``,
      );
    }
    lap('check');
  }
  const state: LabState = {
    lab, file: topology.file, phase: 'creating', createdAt: new Date().toISOString(),
    netns: build.netns.map((n) => n.netns),
    // Only what lives outside the state directory; the directory itself goes whole.
    files: build.files.map((f) => f.path).filter((p) => !p.startsWith(`${stateDir}/`)),
    processes: [],
    ...(build.tunnel ? { tunnel: build.tunnel } : {}),
  };
  return { plan, build, facts, state, stateDir, log: undefined as unknown as Logger, timings: {}, prepareMs, readyMs: {}, noMesh: !!opts.noMesh };
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * For the SIGKILL tests: AMBIENT_LAB_KILL_AT_STEP=<key> makes `up` note the step in
 * AMBIENT_LAB_KILL_MARKER and kill itself as that step starts, so each step's cleanup is proven.
 */
function killPoint(key: UpStepKey): void {
  if (process.env.AMBIENT_LAB_KILL_AT_STEP !== key) return;
  const marker = process.env.AMBIENT_LAB_KILL_MARKER;
  if (marker) writeFileSync(marker, `${key}\n`, { flag: 'a' });
  process.kill(process.pid, 'SIGKILL');
}

const step = (ctx: UpContext, key: UpStepKey, title: string, fn: () => Promise<void>): UpStep => ({
  key, title,
  run: async () => {
    killPoint(key);
    const t0 = performance.now();
    await fn();
    ctx.timings[key] = round(performance.now() - t0);
  },
});

export function upSteps(ctx: UpContext): UpStep[] {
  const { build, plan } = ctx;
  const byStage = (s: number) => build.netns.filter((n) => n.stage === s);
  const waited = build.processes.filter((p) => p.readyFile);
  let certs: ReturnType<typeof issueCertificatesInWorker> | undefined;
  return [
    step(ctx, 'state', 'Record state', async () => {
      // state.json first: it is the owner mark `lab down` needs before it removes the directory.
      writeState(ctx.state);
      for (const d of build.dirs) mkdirSync(d, { recursive: true });
      ctx.log = fileLogger(`${ctx.stateDir}/logs/lab.log`, 'lab');
      ctx.log.info({ file: ctx.state.file, netns: ctx.state.netns.length, tunnel: build.tunnel }, 'lab up');
      writeFileSync(`${ctx.stateDir}/plan.json`, JSON.stringify(ctx.plan, null, 2));
      // The supervisor and `lab down` read what was planned, processes included.
      writeFileSync(`${ctx.stateDir}/build.json`, JSON.stringify(build, null, 2));
      // Issued while the kernel steps run (cert-worker.ts); awaited by the files step.
      certs = issueCertificatesInWorker(build);
      ctx.stopBackground = certs.stop;
    }),
    step(ctx, 'netns', `Create ${build.netns.length} network namespaces`, async () => {
      await ipBatch(undefined, build.netns.map((n) => `netns add ${n.netns}`));
    }),
    step(ctx, 'links', `Wire underlay, ${plan.nodes.length} nodes and ${plan.pods.length} pods${build.tunnel ? ` (Geneve: ${build.tunnel})` : ''}`, async () => {
      // One `ip -batch` per namespace, all from one shell (runStages): underlay, then nodes, then pods.
      await runStages([0, 1, 2].map((stage) => byStage(stage).filter((n) => n.links.length)
        .map((n) => ({ cmd: ['ip', '-n', n.netns, '-batch', '-'], input: n.links.join('\n') + '\n' }))));
    }),
    step(ctx, 'rules', 'Services (kube-proxy rules), istio-cni rules, sysctls and routes', async () => {
      // applyNetnsConfig's script per namespace, batched like the links.
      await runBatch(build.netns.filter((n) => !isEmptyConfig(n.config)).map((n) => {
        const [cmd, args] = nsWrap(n.netns, 'sh', ['-c', configScript(n.config)]);
        return { cmd: [cmd, ...args] };
      }));
    }),
    step(ctx, 'files', `Lab CA, ${build.certificates.length ? 'proxy certificates, ' : ''}configs, resolv.conf`, async () => {
      await certs!.done;
      prepareOwnDirs(build.processes);
      for (const d of new Set(build.files.map((f) => dirname(f.path)))) mkdirSync(d, { recursive: true });
      for (const f of build.files) writeFileSync(f.path, f.content);
    }),
    step(ctx, 'processes', `Start ${build.processes.length} processes`, async () => {
      for (const spec of build.processes) if (spec.readyFile) rmSync(spec.readyFile, { force: true });
      // One launcher forks them all, Geneve, ztunnels and DNS first (see startProcesses).
      ctx.state.processes.push(...await startProcesses(plan.lab, launchOrder(build.processes)));
      writeState(ctx.state);
    }),
    step(ctx, 'ready', `Wait until ${waited.length} processes are ready`, async () => {
      ctx.readyMs = await waitReady(waited.map((spec) => {
        const rec = ctx.state.processes.find((p) => p.id === spec.id)!;
        return { readyFile: spec.readyFile!, pid: rec.pid, log: spec.log, id: spec.id };
      }));
    }),
    step(ctx, 'supervisor', ctx.noMesh ? 'Done' : 'Start the supervisor (restarts dead proxies)', async () => {
      if (!ctx.noMesh) {
        ctx.state.processes.push(startProcess(plan.lab, {
          id: 'supervisor', role: 'supervisor', netns: plan.underlay.netns,
          argv: [process.execPath, `${distDir()}/lab/supervisor.js`, '--lab', plan.lab],
          log: `${ctx.stateDir}/logs/supervisor.log.stdout`,
        }));
      }
      ctx.state.phase = 'up';
      ctx.state.timings = ctx.timings;
      writeState(ctx.state);
      ctx.log.info({ timings: ctx.timings }, 'lab is up');
    }),
  ];
}

export async function runUpSteps(ctx: UpContext): Promise<void> {
  for (const s of upSteps(ctx)) await s.run();
}
