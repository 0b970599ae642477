// Which lab a verb acts on, and what a TARGET names (pod, node, ztunnel, underlay).
import { readFileSync } from 'node:fs';
import { labStateFile, readState, type LabState } from '../state/store.js';
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import { UserError } from '../util/errors.js';
import { checkLabName } from '../topology/lab-name.js';

/**
 * Validates a lab name from the command line with the topology's `name:` rule, before
 * anything uses it as a path or a namespace prefix. `what` says where it came from.
 * Undefined (not given) passes through; an empty string is given, and invalid.
 */
export function checkedLabArg(name: string | undefined, what = '--lab'): string | undefined {
  return name === undefined ? undefined : checkLabName(String(name), `lab name given with ${what}`);
}

/** The lab a verb acts on: `--lab NAME` (validated), else the only lab that is up. */
export async function resolveLab(name?: string): Promise<string> {
  if (name !== undefined) return checkedLabArg(name)!;
  // Imported here: down.js brings the planner and execa, which a verb given --lab never needs.
  const { listLabs } = await import('../lab/down.js');
  const labs = await listLabs();
  if (labs.length === 1) return labs[0];
  if (labs.length === 0) throw new UserError('no lab is up', 'start one with `lab up topologies/demo.yaml`');
  throw new UserError(`several labs are up (${labs.join(', ')})`, 'pick one with --lab NAME');
}

export interface LoadedLab {
  state: LabState;
  plan: LabPlan;
}

export function loadLab(lab: string): LoadedLab {
  const state = readState(lab);
  if (!state) throw new UserError(`lab "${lab}" has no state (is it up?)`, '`lab status` lists labs; `lab down --all` removes leftovers');
  let plan: LabPlan;
  try {
    plan = JSON.parse(readFileSync(labStateFile(lab, 'plan.json'), 'utf8')) as LabPlan;
  } catch {
    throw new UserError(`lab "${lab}" is incomplete (no plan.json): it is still coming up or failed`, `run \`lab down ${lab}\``);
  }
  return { state, plan };
}

export interface Target {
  kind: 'pod' | 'node' | 'underlay';
  name: string;
  netns: string;
  pod?: PlannedPod;
}

/** `sleep`, `default/sleep`, `node-a`, `ztunnel-node-a`, `underlay`. */
export function resolveTarget(plan: LabPlan, target: string): Target {
  const [ns, name] = target.includes('/') ? target.split('/', 2) : [undefined, target];
  const pods = plan.pods.filter((p) => p.name === name && (!ns || p.namespace === ns));
  if (pods.length > 1) {
    throw new UserError(`"${target}" matches pods in several namespaces (${pods.map((p) => p.namespace).join(', ')})`, `say which: ${pods.map((p) => p.key).join(' or ')}`);
  }
  if (pods.length === 1) return { kind: 'pod', name: pods[0].key, netns: pods[0].netns, pod: pods[0] };
  const node = !ns && plan.nodes.find((n) => n.name === name);
  if (node) return { kind: 'node', name: node.name, netns: node.netns };
  if (!ns && name === 'underlay') return { kind: 'underlay', name, netns: plan.underlay.netns };
  const known = [...plan.pods.filter((p) => p.role === 'workload').map((p) => p.name), ...plan.nodes.map((n) => n.name), ...plan.nodes.map((n) => `ztunnel-${n.name}`)];
  throw new UserError(`no pod or node "${target}" in lab "${plan.lab}"`, `known: ${known.join(', ')}, underlay`);
}
