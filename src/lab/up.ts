// `lab up` as one straight line: load -> validate -> plan -> apply -> start -> ready.
// Each step is data for the CLI's progress display; state is written before anything
// is created, so `lab down` can always remove what an interrupted `up` left.
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { loadTopology } from '../topology/load.js';
import { planAddresses, type LabPlan } from '../topology/address-plan.js';
import { buildLab, type LabBuild } from '../plan/lab-build.js';
import { labStateDir, readState, writeState, type LabState } from '../state/store.js';
import { ipBatch } from '../host/run.js';
import { netnsExists, findOwnedNetns } from '../host/netns.js';
import { applyNetnsConfig } from '../host/netns-config.js';
import { startProcess, waitReady } from '../host/processes.js';
import { UserError } from '../util/errors.js';
import { fileLogger } from '../util/log.js';
import { distDir } from './paths.js';
import { buildDnsRecords } from '../apps/dns-records.js';
import type { TunnelKind } from './mesh.js';

export interface UpStep {
  title: string;
  run: () => Promise<void>;
}

export interface UpContext {
  plan: LabPlan;
  build: LabBuild;
  state: LabState;
  stateDir: string;
  log: Logger;
  tunnel?: TunnelKind;
  noMesh: boolean;
  timings: Record<string, number>;
}

export interface UpOptions {
  /** Overrides the topology's name (positional NAME of `lab up`). */
  name?: string;
  /** No istio-cni rules, no ztunnels: every pod behaves as `mode: none` (a baseline). */
  noMesh?: boolean;
}

/** Everything that can be checked before touching the machine; throws UserError. */
export async function prepareUp(file: string, opts: UpOptions = {}): Promise<UpContext> {
  const topology = loadTopology(file);
  if (opts.name) topology.name = opts.name;
  // Without the mesh nothing redirects or proxies, so every pod really is `mode: none`.
  if (opts.noMesh) for (const p of topology.pods) p.mode = 'none';
  const plan = planAddresses(topology);
  const lab = plan.lab;
  if (readState(lab)) {
    throw new UserError(`lab "${lab}" is already up (state in ${labStateDir(lab)})`, `run \`lab down ${lab}\` first, or give this one another name: \`lab up ${file} NAME\``);
  }
  const stateDir = labStateDir(lab);
  const build = buildLab(plan, { stateDir, distDir: distDir(), node: process.execPath });
  const clash = build.netns.map((n) => n.netns).filter(netnsExists);
  const owned = await findOwnedNetns(lab);
  if (clash.length || owned.length) {
    throw new UserError(
      `network namespaces of lab "${lab}" already exist: ${[...new Set([...clash, ...owned.map((o) => o.netns)])].slice(0, 5).join(', ')}`,
      `a previous lab "${lab}" was not removed: run \`lab down ${lab}\``,
    );
  }
  const state: LabState = {
    lab, file: topology.file, phase: 'creating', createdAt: new Date().toISOString(),
    netns: build.netns.map((n) => n.netns), files: build.files.map((f) => f.path), processes: [],
  };
  return { plan, build, state, stateDir, log: undefined as unknown as Logger, timings: {}, noMesh: !!opts.noMesh };
}

const timed = (ctx: UpContext, key: string, fn: () => Promise<void>) => async () => {
  const t0 = performance.now();
  await fn();
  ctx.timings[key] = Math.round((performance.now() - t0) * 10) / 10;
};

export function upSteps(ctx: UpContext): UpStep[] {
  const { build, plan } = ctx;
  const byStage = (s: number) => build.netns.filter((n) => n.stage === s);
  return [
    {
      title: 'Record state',
      run: timed(ctx, 'state', async () => {
        mkdirSync(`${ctx.stateDir}/logs`, { recursive: true });
        mkdirSync(`${ctx.stateDir}/ready`, { recursive: true });
        ctx.log = fileLogger(`${ctx.stateDir}/logs/lab.log`, 'lab');
        ctx.log.info({ file: ctx.state.file, netns: ctx.state.netns.length }, 'lab up');
        writeState(ctx.state);
        writeFileSync(`${ctx.stateDir}/plan.json`, JSON.stringify(ctx.plan, null, 2));
      }),
    },
    {
      title: `Create ${build.netns.length} network namespaces`,
      run: timed(ctx, 'netns', async () => {
        await ipBatch(undefined, build.netns.map((n) => `netns add ${n.netns}`));
      }),
    },
    {
      title: 'Plan the ambient mesh (Geneve: kernel or userspace)',
      run: timed(ctx, 'mesh', async () => {
        if (ctx.noMesh) return;
        const { chooseTunnel, planMesh } = await import('./mesh.js');
        ctx.tunnel = await chooseTunnel(plan.topology.tunnel, plan.underlay.netns);
        ctx.state.tunnel = ctx.tunnel;
        planMesh(plan, build, ctx.tunnel, { stateDir: ctx.stateDir, distDir: distDir(), node: process.execPath });
      }),
    },
    {
      title: `Wire underlay, ${plan.nodes.length} nodes and ${plan.pods.length} pods`,
      run: timed(ctx, 'links', async () => {
        for (const stage of [0, 1, 2]) {
          await Promise.all(byStage(stage).map((n) => ipBatch(n.netns, n.links)));
        }
      }),
    },
    {
      title: 'Services (kube-proxy rules), sysctls and routes',
      run: timed(ctx, 'rules', async () => {
        await Promise.all(build.netns.map((n) => applyNetnsConfig(n.netns, n.config)));
      }),
    },
    {
      title: 'Lab CA, ztunnel configs, cluster DNS, resolv.conf',
      run: timed(ctx, 'files', async () => {
        if (!ctx.noMesh) await (await import('./mesh.js')).writeMeshFiles(plan, ctx.stateDir);
        const dns = buildDnsRecords(plan.services.map((s) => ({ name: s.name, namespace: s.namespace, vip: s.vip })));
        writeFileSync(`${ctx.stateDir}/dns.json`, JSON.stringify(dns, null, 2));
        for (const f of build.files) {
          mkdirSync(dirname(f.path), { recursive: true });
          writeFileSync(f.path, f.content);
        }
      }),
    },
    {
      title: `Start ${build.processes.length} processes`,
      run: timed(ctx, 'processes', async () => {
        for (const spec of build.processes) {
          rmSync(spec.readyFile ?? '/nonexistent', { force: true });
          ctx.state.processes.push(startProcess(plan.lab, spec));
        }
        writeState(ctx.state);
      }),
    },
    {
      title: 'Wait until ready',
      run: timed(ctx, 'ready', async () => {
        const waits = build.processes.flatMap((spec) => {
          const rec = ctx.state.processes.find((p) => p.id === spec.id)!;
          return spec.readyFile ? [{ readyFile: spec.readyFile, pid: rec.pid, log: spec.log, id: spec.id }] : [];
        });
        await waitReady(waits);
        if (!ctx.noMesh) {
          writeFileSync(`${ctx.stateDir}/build.json`, JSON.stringify(build, null, 2));
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
    },
  ];
}

export async function runUpSteps(ctx: UpContext): Promise<void> {
  for (const s of upSteps(ctx)) await s.run();
}
