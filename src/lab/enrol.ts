// Enrolling and unenrolling a running pod live, as istio-cni 1.18-1.20 does when a namespace gets
// (or loses) `istio.io/dataplane-mode=ambient`: on the pod's node, the pod IP goes into (or out
// of) the `ztunnel-pods-ips` ipset with the pod UID as comment, its `<podIP>/32 via 192.168.126.2
// dev istioin src <HostIP>` route into (or out of) table 100, and `rp_filter=0` on its host veth
// (reference §1.1); every ztunnel learns the pod as an HBONE workload (or TCP again). The pod's
// processes are not touched. What is written to the kernel is the difference between the running
// build and the lab planned again with the pod's new mode (the plan `lab up` would make), and the
// ztunnel configs go out through `lab apply`'s push (rename, then wait for each /config_dump hash).
// The new modes are kept in the state directory (modes.json), so every later re-plan (`lab
// apply`), `lab status`, `lab trace` and the supervisor see them; `lab down` removes them with it.
import { readFileSync } from 'node:fs';
import { labStateFile } from '../state/store.js';
import type { Topology, PodMode } from '../topology/types.js';
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import type { LabBuild, NetnsBuild } from '../plan/lab-build.js';
import type { IpsetSpec, RouteSpec } from '../plan/types.js';
import { ipRouteArgs } from '../plan/iptables-render.js';
import { run } from '../host/run.js';
import { UserError } from '../util/errors.js';
import { readApplied, replan, checkLiveChange, push, writeAtomic, type ProxyPush } from './apply.js';

/** `namespace/name` -> the mode the pod has now, where it differs from the topology file. */
export type ModeOverrides = Record<string, PodMode>;

const modesFile = (lab: string): string => labStateFile(lab, 'modes.json');
const logFile = (lab: string): string => labStateFile(lab, 'enrolments.json');

/** Every live change, oldest first (exercise 2's check looks for an unenrol followed by an enrol). */
export interface EnrolmentEvent { pod: string; to: PodMode; at: string }

export function readEnrolmentLog(lab: string): EnrolmentEvent[] {
  try { return JSON.parse(readFileSync(logFile(lab), 'utf8')) as EnrolmentEvent[]; } catch { return []; }
}

export function readModeOverrides(lab: string): ModeOverrides {
  try { return JSON.parse(readFileSync(modesFile(lab), 'utf8')) as ModeOverrides; } catch { return {}; }
}

/** Gives the topology's pods the modes they were given live. */
export function applyModeOverrides(lab: string, topology: Topology): void {
  const o = readModeOverrides(lab);
  for (const p of topology.pods) {
    const m = o[`${p.namespace}/${p.name}`];
    if (m) p.mode = m;
  }
}

/** The kubectl-like label argument: `istio.io/dataplane-mode=ambient` enrols, `istio.io/dataplane-mode-` unenrols. */
export const DATAPLANE_LABEL = 'istio.io/dataplane-mode';

export function parseDataplaneLabel(arg: string): boolean {
  if (arg === `${DATAPLANE_LABEL}=ambient`) return true;
  if (arg === `${DATAPLANE_LABEL}-`) return false;
  const key = arg.split('=')[0].replace(/-$/, '');
  const aside = key !== DATAPLANE_LABEL ? ` (${key} changes nothing in the data path)` : '';
  throw new UserError(`label "${arg}" is not one the lab acts on${aside}`,
    `give ${DATAPLANE_LABEL}=ambient (enrol the namespace's pods) or ${DATAPLANE_LABEL}- (remove the label: unenrol them); 1.18-1.20 enrol only on the value "ambient"`);
}

/** Why a pod cannot be enrolled or unenrolled live, or undefined when it can. */
export function notEnrollable(p: PlannedPod): string | undefined {
  if (p.role === 'ztunnel') return `${p.key} is the node's ztunnel pod: it is the proxy, never in ztunnel-pods-ips`;
  if (p.role === 'dns') return `${p.key} is the cluster DNS pod, which the lab keeps out of the mesh`;
  if (p.role === 'waypoint') return `${p.key} is a waypoint: istio-cni never redirects it (it speaks HBONE itself)`;
  if (p.mode === 'sidecar') return `${p.key} has a sidecar (mode: sidecar): istio-cni leaves pods with sidecar.istio.io/status alone`;
  return undefined;
}

function findPod(plan: LabPlan, ref: string): PlannedPod {
  const [ns, name] = ref.includes('/') ? ref.split('/', 2) : [undefined, ref];
  const pods = plan.pods.filter((p) => p.name === name && (!ns || p.namespace === ns));
  if (pods.length > 1) throw new UserError(`"${ref}" matches pods in several namespaces (${pods.map((p) => p.namespace).join(', ')})`, `say which: ${pods.map((p) => p.key).join(' or ')}`);
  if (!pods.length) {
    const known = plan.pods.filter((p) => p.role === 'workload' && p.mode !== 'sidecar').map((p) => p.key);
    throw new UserError(`no pod "${ref}" in lab "${plan.lab}"`, `pods that can be enrolled: ${known.join(', ') || 'none'}`);
  }
  return pods[0];
}

/** Kernel changes on one node: the difference of its ipset entries, routes and sysctls. */
export interface NodeChange {
  netns: string;
  /** Commands in the order they run (argv, inside the node's netns). */
  commands: string[][];
}

type Entry = IpsetSpec['entries'][number];
const routeKey = (r: RouteSpec): string => ipRouteArgs(r).join(' ');

/**
 * What the kernel of each node must do to go from `before` to `after`, which may differ only in
 * what istio-cni changes per pod; anything else is refused (a live enrolment adds no chain or link).
 * Enrolling routes before the ipset (so the pod's first marked packet has its way back through
 * istioin); unenrolling takes the ipset entry out first (no new capture), then the route.
 */
export function nodeChanges(before: LabBuild, after: LabBuild): NodeChange[] {
  const out: NodeChange[] = [];
  for (const n of after.netns) {
    const o = before.netns.find((x) => x.netns === n.netns);
    if (!o) continue;
    const same = (f: (b: NetnsBuild) => unknown): boolean => JSON.stringify(f(o)) === JSON.stringify(f(n));
    if (!same((b) => b.links) || !same((b) => b.config.ruleset) || !same((b) => b.config.rules)) {
      throw new Error(`enrolment would change more than the ipset, routes and sysctls of ${n.netns}`);
    }
    const sets = (b: NetnsBuild): Map<string, { set: string; e: Entry }> =>
      new Map((b.config.ipsets ?? []).flatMap((s) => s.entries.map((e) => [`${s.name} ${e.ip}`, { set: s.name, e }] as const)));
    const [oldSet, newSet] = [sets(o), sets(n)];
    const oldRoutes = new Set(o.config.routes.map(routeKey));
    const newRoutes = new Set(n.config.routes.map(routeKey));
    const cmds: string[][] = [];
    // Unenrol: out of the set first, then the route.
    for (const [k, v] of oldSet) if (!newSet.has(k)) cmds.push(['ipset', 'del', v.set, v.e.ip, '-exist']);
    for (const r of o.config.routes) if (!newRoutes.has(routeKey(r))) cmds.push(['ip', 'route', 'del', ...ipRouteArgs(r).slice(1)]);
    // Enrol: the route and the veth's rp_filter, then into the set.
    for (const r of n.config.routes) if (!oldRoutes.has(routeKey(r))) cmds.push(['ip', 'route', 'replace', ...ipRouteArgs(r).slice(1)]);
    for (const [k, v] of Object.entries(n.config.sysctls)) if (o.config.sysctls[k] !== v) cmds.push(['sysctl', '-q', '-w', `${k}=${v}`]);
    for (const [k, v] of newSet) {
      if (!oldSet.has(k)) cmds.push(['ipset', 'add', v.set, v.e.ip, ...(v.e.comment !== undefined ? ['comment', v.e.comment] : []), '-exist']);
    }
    if (cmds.length) out.push({ netns: n.netns, commands: cmds });
  }
  return out;
}

export interface EnrolChange { pod: string; node: string; ip: string; from: PodMode; to: PodMode }

export interface EnrolResult {
  lab: string;
  /** What was asked: a pod, or a namespace label. */
  target: string;
  changed: EnrolChange[];
  unchanged: string[];
  skipped: Array<{ pod: string; why: string }>;
  kernel: Array<{ netns: string; command: string }>;
  reloaded: ProxyPush[];
}

type Selection = { pods: PlannedPod[]; skipped: Array<{ pod: string; why: string }> };

/** `lab enrol POD`: one pod; one that cannot be is an error (exit 2). */
export function selectPod(plan: LabPlan, ref: string): Selection {
  const p = findPod(plan, ref);
  const why = notEnrollable(p);
  if (why) throw new UserError(why, 'only workload pods without a sidecar are enrolled and unenrolled; `lab status` shows each pod\'s mode');
  return { pods: [p], skipped: [] };
}

/** `lab label namespace NS ...`: every pod of the namespace istio-cni would act on; the others are reported. */
export function selectNamespace(plan: LabPlan, ns: string): Selection {
  const inNs = plan.pods.filter((p) => p.namespace === ns);
  if (!inNs.length) {
    const known = [...new Set(plan.pods.filter((p) => p.role === 'workload').map((p) => p.namespace))];
    throw new UserError(`no namespace "${ns}" in lab "${plan.lab}"`, `namespaces with pods: ${known.join(', ')}`);
  }
  const system = inNs.find((p) => p.role === 'ztunnel' || p.role === 'dns');
  if (system) throw new UserError(`namespace ${ns} holds the lab's ${system.role === 'dns' ? 'cluster DNS' : 'ztunnel pods'}: the mesh's own pods are never enrolled`, 'label a namespace of workload pods');
  const pods = inNs.filter((p) => !notEnrollable(p));
  const skipped = inNs.filter((p) => notEnrollable(p)).map((p) => ({ pod: p.key, why: notEnrollable(p)! }));
  if (!pods.length) throw new UserError(`namespace ${ns} has no pod istio-cni would enrol (${skipped.map((s) => s.pod).join(', ')}: sidecars or waypoints)`, 'label a namespace of workload pods');
  return { pods, skipped };
}

/**
 * Gives the selected pods mode ambient (enrol) or none (unenrol), live: kernel on their nodes,
 * configs to every ztunnel, then the record. Pods already in that mode are reported unchanged.
 */
export async function setEnrolment(lab: string, target: string, select: (plan: LabPlan) => Selection, enrol: boolean, timeoutMs = 10_000): Promise<EnrolResult> {
  const oldPlan = JSON.parse(readFileSync(labStateFile(lab, 'plan.json'), 'utf8')) as LabPlan;
  const applied = readApplied(lab);
  // Refuses a lab that is not up or has no mesh, before anything is touched.
  replan(lab, applied);
  const { pods, skipped } = select(oldPlan);
  const to: PodMode = enrol ? 'ambient' : 'none';
  const changing = pods.filter((p) => p.mode !== to);
  const result: EnrolResult = { lab, target, changed: [], unchanged: pods.filter((p) => p.mode === to).map((p) => p.key), skipped, kernel: [], reloaded: [] };
  if (!changing.length) return result;

  const overrides = readModeOverrides(lab);
  const previous = { ...overrides };
  for (const p of changing) {
    // plan.json carries the live mode; with an override in place the file says the other one
    // (live, a pod only moves between ambient and none). An override equal to the file is none.
    const fileMode: PodMode = overrides[p.key] ? (overrides[p.key] === 'ambient' ? 'none' : 'ambient') : p.mode;
    if (fileMode === to) delete overrides[p.key]; else overrides[p.key] = to;
  }
  writeAtomic(modesFile(lab), JSON.stringify(overrides, null, 2));
  try {
    const planned = replan(lab, applied);
    const live = checkLiveChange(planned, oldPlan);
    const changes = nodeChanges(planned.oldBuild, planned.build);
    // Enrolling: the node first (the pod's traffic is captured), then the ztunnels learn it speaks
    // HBONE. Unenrolling: the ztunnels first (no peer sends it HBONE any more), then the node.
    const kernel = async (): Promise<void> => {
      for (const c of changes) {
        for (const argv of c.commands) {
          const r = await run(argv[0], argv.slice(1), { netns: c.netns, reject: false });
          // An unenrolled pod's route may already be gone (a learner's hand, `lab break`): fine.
          if (r.exitCode !== 0 && !(argv[1] === 'route' && argv[2] === 'del')) {
            throw new Error(`${argv.join(' ')} in ${c.netns} failed: ${r.stderr.trim()}`);
          }
        }
        result.kernel.push(...c.commands.map((argv) => ({ netns: c.netns, command: argv.join(' ') })));
      }
    };
    if (enrol) await kernel();
    const pushed = await push(lab, planned, live, timeoutMs);
    if (!enrol) await kernel();
    result.reloaded = pushed.reloaded;
    writeAtomic(labStateFile(lab, 'build.json'), JSON.stringify(planned.build, null, 2));
    writeAtomic(labStateFile(lab, 'plan.json'), JSON.stringify(planned.plan, null, 2));
  } catch (e) {
    // Nothing recorded for a change that did not go through (what did run is in the error).
    writeAtomic(modesFile(lab), JSON.stringify(previous, null, 2));
    throw e;
  }
  result.changed = changing.map((p) => ({ pod: p.key, node: p.node, ip: p.ip, from: p.mode, to }));
  const at = new Date().toISOString();
  writeAtomic(logFile(lab), JSON.stringify([...readEnrolmentLog(lab), ...changing.map((p) => ({ pod: p.key, to, at }))], null, 2));
  return result;
}
