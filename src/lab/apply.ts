// `lab apply` / `lab delete`: change the Istio and Gateway API objects of a running lab, as
// `kubectl apply` changes a cluster's. The new set of objects (the topology's own plus every
// applied one) is validated and planned exactly as `lab up` plans (one pure plan, no second
// code path); what differs from the running build is then pushed: proxy configs are replaced
// by rename and each affected proxy is waited for until it reports the new config's hash; a
// new waypoint Gateway gets its pod (namespace, veth, certificates, process), a deleted one
// loses it. Any error before the push changes nothing.
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { insideDir } from '../util/inside-dir.js';
import { loadTopology } from '../topology/load.js';
import { planAddresses, type LabPlan } from '../topology/address-plan.js';
import { planLab, type LabBuild, type ProcessSpec } from '../plan/lab-build.js';
import { parseResources, type ParsedResources } from '../istio/index.js';
import { splitObjects, type ObjectDocument } from '../istio/documents.js';
import { labStateFile, readState, writeState, type LabState } from '../state/store.js';
import { ipBatch, run } from '../host/run.js';
import { applyNetnsConfig } from '../host/netns-config.js';
import { startProcess, stopProcesses, waitReady } from '../host/processes.js';
import { issueProxyCerts } from '../mesh/ca.js';
import { parseSpiffe, type SpiffeId } from '../mesh/identity.js';
import { contentHash } from '../proxy/control-plane.js';
import { ADMIN_PORT } from '../mesh/ports.js';
import { UserError } from '../util/errors.js';
import { distDir } from './paths.js';
import { LAB_CERT_TTL_MS, chownTree } from './certificates.js';
import { applyModeOverrides } from './enrol.js';

/** One object applied with `lab apply`, kept in the state directory (applied.json). */
export interface AppliedObject extends ObjectDocument {
  appliedAt: string;
}

export interface ApplyChange {
  key: string;
  /** kubectl's words. */
  action: 'created' | 'configured' | 'unchanged' | 'deleted';
}

export interface ProxyPush {
  id: string;
  version?: number;
  hash: string;
}

export interface ApplyResult {
  lab: string;
  changes: ApplyChange[];
  reloaded: ProxyPush[];
  started: string[];
  stopped: string[];
  warnings: string[];
}

const appliedFile = (lab: string): string => labStateFile(lab, 'applied.json');

export function readApplied(lab: string): AppliedObject[] {
  try {
    return JSON.parse(readFileSync(appliedFile(lab), 'utf8')) as AppliedObject[];
  } catch {
    return [];
  }
}

const parseApplied = (objs: AppliedObject[]): ParsedResources[] =>
  objs.map((o) => parseResources(o.text, o.where.replace(/:\d+$/, ''), { lineOffset: Number(o.where.split(':').pop()) - 1 }));

export interface Planned {
  state: LabState;
  oldBuild: LabBuild;
  plan: LabPlan;
  build: LabBuild;
  warnings: string[];
}

/** Plans the lab as `lab up` would with `objects` applied; throws UserError (nothing touched). */
export function replan(lab: string, objects: AppliedObject[]): Planned {
  const state = readState(lab);
  if (!state) throw new UserError(`no lab "${lab}" is up`, '`lab status` lists labs');
  if (state.phase !== 'up') throw new UserError(`lab "${lab}" is ${state.phase}, not up`, 'wait for `lab up` to finish, or `lab down` it');
  const oldBuild = JSON.parse(readFileSync(labStateFile(lab, 'build.json'), 'utf8')) as LabBuild;
  if (!oldBuild.tunnel) throw new UserError(`lab "${lab}" runs without the mesh (--no-mesh): there is no proxy to configure`, 'bring it up without --no-mesh');
  const topology = loadTopology(state.file, { extraResources: parseApplied(objects) });
  topology.name = lab;
  // Pods enrolled or unenrolled live (`lab enrol`, `lab label namespace`) keep their mode.
  applyModeOverrides(lab, topology);
  const plan = planAddresses(topology);
  const stateDir = dirname(labStateFile(lab, 'state.json'));
  // The tunnel was decided at `up`; planning again must not change it.
  const build = planLab(plan, { kernelGeneve: oldBuild.tunnel === 'kernel' }, { stateDir, distDir: distDir(), node: process.execPath }, { mesh: true });
  return { state, oldBuild, plan, build, warnings: topology.warnings ?? [] };
}

/** What may change live: proxy configs, and waypoint pods coming and going. Anything else is refused. */
export function checkLiveChange(p: Planned, oldPlan: LabPlan): { added: string[]; removed: string[] } {
  const oldNs = new Set(p.oldBuild.netns.map((n) => n.netns));
  const newNs = new Set(p.build.netns.map((n) => n.netns));
  const added = [...newNs].filter((n) => !oldNs.has(n));
  const removed = [...oldNs].filter((n) => !newNs.has(n));
  const roleOf = (plan: LabPlan, ns: string) => plan.pods.find((x) => x.netns === ns)?.role;
  for (const ns of [...added.map((n) => [n, roleOf(p.plan, n)]), ...removed.map((n) => [n, roleOf(oldPlan, n)])]) {
    if (ns[1] !== 'waypoint') throw new UserError(`this change would add or remove ${ns[0]}, which only \`lab up\` can do`, 'bring the lab down and up again');
  }
  for (const pod of p.plan.pods) {
    const before = oldPlan.pods.find((x) => x.key === pod.key);
    if (before && before.ip !== pod.ip) {
      throw new UserError(`this change would renumber pod ${pod.key} (${before.ip} -> ${pod.ip})`,
        'waypoints are numbered in the order of their Gateways: delete them in reverse order, or rebuild the lab');
    }
  }
  return { added, removed };
}

/** Waits until the proxy in `netns` reports config hash `hash` on its admin port. */
async function waitForConfig(netns: string, hash: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await run('curl', ['-s', '--max-time', '2', `http://127.0.0.1:${ADMIN_PORT}/config_dump`], { netns, reject: false });
    try {
      const v = (JSON.parse(r.stdout) as { config?: { version?: number; hash?: string } }).config;
      if (v?.hash === hash) return v.version;
    } catch { /* not up yet, or mid-reload */ }
    if (Date.now() > deadline) throw new Error(`the proxy in ${netns} did not load config ${hash} within ${timeoutMs} ms (see \`lab logs\`)`);
    await new Promise((r2) => setTimeout(r2, 50));
  }
}

export const writeAtomic = (path: string, content: string): void => {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
};

async function issueFor(build: LabBuild, owners: Set<string>): Promise<void> {
  for (const c of build.certificates.filter((x) => owners.has(x.owner))) {
    const ids = c.identities.map((u) => parseSpiffe(u)).filter((x): x is SpiffeId => !!x);
    await issueProxyCerts(build.ca!.dir, c.dir, ids, { ttlMs: LAB_CERT_TTL_MS });
    if (c.user) chownTree(c.dir, c.user);
  }
}

/** Pushes the difference between the running build and `p.build`. */
export async function push(lab: string, p: Planned, live: { added: string[]; removed: string[] }, timeoutMs: number): Promise<Pick<ApplyResult, 'reloaded' | 'started' | 'stopped'>> {
  const { state, oldBuild, build } = p;
  const started: string[] = [];
  const stopped: string[] = [];
  const procOf = (b: LabBuild, ns: string) => b.processes.filter((x) => x.netns === ns);

  // Waypoints going away: out of the state first (so the supervisor does not bring them back),
  // then their process, their namespace (its veth goes with it) and their /etc/netns files.
  for (const ns of live.removed) {
    const recs = state.processes.filter((x) => x.netns === ns);
    const files = state.files.filter((x) => x.startsWith(`/etc/netns/${ns}/`));
    state.processes = state.processes.filter((x) => x.netns !== ns);
    state.netns = state.netns.filter((x) => x !== ns);
    state.files = state.files.filter((x) => !files.includes(x));
    writeState(state);
    await stopProcesses(lab, recs.map((x) => x.pid));
    await ipBatch(undefined, [`netns delete ${ns}`]);
    // Names come from the validated plan; insideDir is the second line of defence for a delete.
    for (const f of files) rmSync(insideDir('/etc/netns', ns, basename(f)), { force: true });
    try { rmdirSync(insideDir('/etc/netns', ns)); } catch { /* not empty, gone, or not ours to force */ }
    stopped.push(...recs.map((x) => x.id));
  }
  // Waypoints coming: recorded first (so `lab down` finds them whatever happens next), then built.
  const newSpecs: ProcessSpec[] = live.added.flatMap((ns) => procOf(build, ns));
  if (live.added.length) {
    state.netns.push(...live.added);
    state.files.push(...build.files.filter((f) => live.added.some((ns) => f.path.startsWith(`/etc/netns/${ns}/`))).map((f) => f.path));
    writeState(state);
    await ipBatch(undefined, live.added.map((ns) => `netns add ${ns}`));
    // The node's new lines (the veth and route of the new pod), then the pod's own.
    for (const n of build.netns.filter((x) => x.kind === 'node')) {
      const before = new Set(oldBuild.netns.find((o) => o.netns === n.netns)?.links ?? []);
      const fresh = n.links.filter((l) => !before.has(l));
      if (fresh.length) await ipBatch(n.netns, fresh);
    }
    for (const ns of live.added) {
      const nb = build.netns.find((x) => x.netns === ns)!;
      await ipBatch(ns, nb.links);
      await applyNetnsConfig(ns, nb.config);
    }
    await issueFor(build, new Set(newSpecs.map((s) => s.id)));
  }
  for (const d of build.dirs) mkdirSync(d, { recursive: true });

  // Config files: every file whose content changed is replaced by rename; proxies watch them.
  const waits: Array<{ id: string; netns: string; hash: string }> = [];
  for (const f of build.files) {
    const old = existsSync(f.path) ? readFileSync(f.path, 'utf8') : undefined;
    if (old === f.content) continue;
    writeAtomic(f.path, f.content);
    const proc = build.processes.find((x) => x.liveConfig === f.path);
    if (proc && !newSpecs.includes(proc)) waits.push({ id: proc.id, netns: proc.netns, hash: contentHash(f.content) });
  }
  for (const spec of newSpecs) {
    if (spec.readyFile) rmSync(spec.readyFile, { force: true });
    state.processes.push(startProcess(lab, spec));
    started.push(spec.id);
  }
  writeState(state);
  await waitReady(newSpecs.filter((s) => s.readyFile).map((s) => ({ readyFile: s.readyFile!, pid: state.processes.find((x) => x.id === s.id)!.pid, log: s.log, id: s.id })));
  const reloaded: ProxyPush[] = [];
  for (const w of waits) {
    const version = await waitForConfig(w.netns, w.hash, timeoutMs);
    reloaded.push({ id: w.id, hash: w.hash, ...(version !== undefined ? { version } : {}) });
  }
  return { reloaded, started, stopped };
}

export interface ApplyOptions {
  /** `lab delete`: remove the objects the file names. */
  delete?: boolean;
  /** `lab delete --ignore-not-found`. */
  ignoreNotFound?: boolean;
  timeoutMs?: number;
}

export async function applyObjects(lab: string, file: string, text: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  // 1. The file on its own: every error names its line (exit 2, nothing changed).
  parseResources(text, file);
  const docs = splitObjects(text, file);
  if (!docs.length) throw new UserError(`${file}: no objects in it`, 'give a file with Kubernetes objects (Gateway, HTTPRoute, VirtualService, ...)');
  const before = readApplied(lab);
  const byKey = new Map(before.map((o) => [o.key, o]));
  const changes: ApplyChange[] = [];
  const now = new Date().toISOString();
  for (const d of docs) {
    const had = byKey.get(d.key);
    if (opts.delete) {
      if (!had) {
        if (opts.ignoreNotFound) continue;
        throw new UserError(`${d.where}: ${d.kind} ${d.namespace}/${d.name} was not applied to lab "${lab}" (not found)`,
          'objects in the topology file are removed by editing it and rebuilding; `lab get` lists what was applied');
      }
      byKey.delete(d.key);
      changes.push({ key: d.key, action: 'deleted' });
    } else {
      changes.push({ key: d.key, action: !had ? 'created' : had.text === d.text ? 'unchanged' : 'configured' });
      byKey.set(d.key, { ...d, appliedAt: had?.text === d.text ? had.appliedAt : now });
    }
  }
  const after = [...byKey.values()];
  // 2. The whole lab with the change, planned as `lab up` plans it.
  const oldPlan = JSON.parse(readFileSync(labStateFile(lab, 'plan.json'), 'utf8')) as LabPlan;
  const planned = replan(lab, after);
  const live = checkLiveChange(planned, oldPlan);
  // 3. Push, then record.
  const pushed = await push(lab, planned, live, opts.timeoutMs ?? 10_000);
  writeAtomic(appliedFile(lab), JSON.stringify(after, null, 2));
  writeAtomic(labStateFile(lab, 'build.json'), JSON.stringify(planned.build, null, 2));
  writeAtomic(labStateFile(lab, 'plan.json'), JSON.stringify(planned.plan, null, 2));
  return { lab, changes, ...pushed, warnings: planned.warnings };
}

export interface ListedObject {
  kind: string;
  namespace: string;
  name: string;
  /** `topology file:line` or `applied from file:line`. */
  source: string;
  /** The applied object's YAML (topology objects: see their file). */
  text?: string;
}

/** Everything `lab get` lists: the topology's own objects and the applied ones. */
export function listObjects(lab: string): ListedObject[] {
  const state = readState(lab);
  if (!state) throw new UserError(`no lab "${lab}" is up`, '`lab status` lists labs');
  const plan = JSON.parse(readFileSync(labStateFile(lab, 'plan.json'), 'utf8')) as LabPlan;
  const out: ListedObject[] = (plan.topology.objects ?? []).map((o) => ({ ...o, source: o.where }));
  for (const a of readApplied(lab)) out.push({ kind: a.kind, namespace: a.namespace, name: a.name, source: `applied from ${a.where}`, text: a.text });
  return out;
}
