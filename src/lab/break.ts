// `lab break`: injects one fault into a live lab's data path, for the break-fix exercise (09).
// Each scenario breaks one piece istio-cni or the ztunnel pod set up (an ip rule, an ipset entry,
// a TPROXY rule, an rp_filter, or a policy the learner did not write) and records, in the
// lab's state directory (faults.json), what it changed and how to put it back, so `lab break
// --reset` undoes it (whether or not the learner already fixed it by hand) and `lab down`, which
// deletes the namespaces and the state directory, leaves nothing behind. `findFaults` looks at
// the live lab against its plan, so a fix by hand counts as a fix.
import { readFileSync, existsSync } from 'node:fs';
import { labStateFile, readState } from '../state/store.js';
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import type { LabBuild } from '../plan/lab-build.js';
import { ipRuleArgs, ruleLine } from '../plan/iptables-render.js';
import { ZTUNNEL_IPSET } from '../ambient/node-rules.js';
import { OUTBOUND_CAPTURE_PORT } from '../mesh/ports.js';
import { run } from '../host/run.js';
import { UserError } from '../util/errors.js';
import { applyObjects, readApplied, writeAtomic } from './apply.js';

/** Where a fault lives, by the name `lab exec` takes (a node, or a pod such as ztunnel-node-a). */
export interface Fault {
  scenario: string;
  where: string;
  netns: string;
  injectedAt: string;
  /** Commands (argv, in `netns`) that put back what the fault changed; each one is safe to repeat. */
  undo: string[][];
  /** The deny-policy scenario: the file it applied (deleted by `lab delete` semantics on reset). */
  policyFile?: string;
  seed?: number;
}

export interface FaultRecord {
  active: Fault[];
  /** Every fault injected since `lab up` (the answer of exercise 9 is the last one). */
  history: Array<Pick<Fault, 'scenario' | 'where' | 'injectedAt' | 'seed'>>;
}

const faultsFile = (lab: string): string => labStateFile(lab, 'faults.json');

export function readFaults(lab: string): FaultRecord {
  try { return JSON.parse(readFileSync(faultsFile(lab), 'utf8')) as FaultRecord; } catch { return { active: [], history: [] }; }
}

const writeFaults = (lab: string, r: FaultRecord): void => writeAtomic(faultsFile(lab), JSON.stringify(r, null, 2));

interface Ctx { lab: string; plan: LabPlan; build: LabBuild; client: PlannedPod; server: PlannedPod }

export interface Scenario {
  id: string;
  /** What the learner sees, never what broke. */
  symptom: (c: Pick<Ctx, 'client' | 'server'>) => string;
  inject: (c: Ctx) => Promise<Omit<Fault, 'scenario' | 'injectedAt' | 'seed'>>;
}

const nodeOf = (c: Ctx, p: PlannedPod) => c.plan.nodes.find((n) => n.name === p.node)!;

async function sh(netns: string, argv: string[]): Promise<string> {
  return (await run(argv[0], argv.slice(1), { netns })).stdout;
}

export const SCENARIOS: Scenario[] = [
  {
    id: 'ip-rule',
    symptom: ({ client, server }) => `${client.name} cannot reach ${server.name} any more: curl fails at once`,
    inject: async (c) => {
      // Rule 101 sends 0x100-marked packets to table 101 (istioout); without it they meet the
      // main table with the Service VIP kube-proxy was told to leave alone.
      const node = nodeOf(c, c.client);
      const spec = { priority: 101, fwmark: '0x100/0x100', table: 101 };
      await sh(node.netns, ['ip', 'rule', 'del', 'priority', '101']);
      return { where: node.name, netns: node.netns, undo: [['sh', '-c', `ip rule show priority 101 | grep -q . || ip rule ${ipRuleArgs(spec).join(' ')}`]] };
    },
  },
  {
    id: 'ipset-entry',
    // Only the entry: the pod's route in table 100 stays, so the answers to its now plain
    // connections are steered into istioin and its ztunnel, which has no socket for them.
    symptom: ({ client, server }) => `${client.name}'s requests to ${server.name} hang until curl gives up`,
    inject: async (c) => {
      const node = nodeOf(c, c.client);
      await sh(node.netns, ['ipset', 'del', ZTUNNEL_IPSET, c.client.ip, '-exist']);
      return { where: node.name, netns: node.netns, undo: [['ipset', 'add', ZTUNNEL_IPSET, c.client.ip, 'comment', c.client.uid, '-exist']] };
    },
  },
  {
    id: 'tproxy',
    symptom: ({ client }) => `every new connection from ${client.name} hangs until curl gives up`,
    inject: async (c) => {
      // The outbound TPROXY rule of the client's ztunnel pod, pointed at a port nobody listens
      // on: the packets still come out of pistioout, and TPROXY finds no socket for them.
      const zt = c.plan.pods.find((p) => p.role === 'ztunnel' && p.node === c.client.node)!;
      const onPort = `--on-port ${OUTBOUND_CAPTURE_PORT}`;
      const rule = plannedRules(c.build, zt.netns).find((l) => /-i pistioout .*TPROXY /.test(l) && l.includes(onPort));
      if (!rule) throw new Error(`no outbound TPROXY rule planned in ${zt.netns}`);
      const lines = (await sh(zt.netns, ['iptables', '-t', 'mangle', '-S', 'PREROUTING'])).split('\n').filter((l) => l.startsWith('-A '));
      const pos = lines.indexOf(rule) + 1;
      if (!pos) throw new Error(`the outbound TPROXY rule is not in ${zt.netns} (already broken?)`);
      const broken = rule.replace(onPort, `--on-port ${OUTBOUND_CAPTURE_PORT + 10}`);
      const spec = (l: string): string[] => l.replace(/^-A PREROUTING /, '').split(' ');
      await sh(zt.netns, ['iptables', '-t', 'mangle', '-R', 'PREROUTING', String(pos), ...spec(broken)]);
      // Undo: the broken rule back to the planned one, wherever it is now; if the learner deleted
      // it instead, the planned rule at its place.
      const fix = `if iptables -t mangle -C PREROUTING ${spec(broken).join(' ')} 2>/dev/null; then `
        + `n=$(iptables -t mangle -S PREROUTING | grep '^-A ' | grep -n -F -- '--on-port 15011' | head -1 | cut -d: -f1); iptables -t mangle -R PREROUTING $n ${spec(rule).join(' ')}; `
        + `elif ! iptables -t mangle -C PREROUTING ${spec(rule).join(' ')} 2>/dev/null; then iptables -t mangle -I PREROUTING ${pos} ${spec(rule).join(' ')}; fi`;
      return { where: zt.name, netns: zt.netns, undo: [['sh', '-c', fix]] };
    },
  },
  {
    id: 'rp-filter',
    symptom: ({ client, server }) => `${client.name}'s requests to ${server.name} hang until curl gives up`,
    inject: async (c) => {
      // Strict reverse-path filtering on the node's side of the ztunnel pod's veth: ztunnel's
      // upstream packets carry the client pod's IP as source, whose route is another veth.
      const node = nodeOf(c, c.client);
      const zt = c.plan.pods.find((p) => p.role === 'ztunnel' && p.node === c.client.node)!;
      const key = `net.ipv4.conf.${zt.hostVeth}.rp_filter`;
      const was = (await sh(node.netns, ['sysctl', '-n', key])).trim() || '0';
      await sh(node.netns, ['sysctl', '-q', '-w', `${key}=1`]);
      return { where: node.name, netns: node.netns, undo: [['sysctl', '-q', '-w', `${key}=${was}`]] };
    },
  },
  {
    id: 'deny-policy',
    symptom: ({ client, server }) => `${client.name}'s connections to ${server.name} are reset (curl exit 56)`,
    inject: async (c) => {
      const file = labStateFile(c.lab, 'faults', 'policy.yaml');
      const text = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: maintenance
  namespace: ${c.server.namespace}
spec:
  selector:
    matchLabels:
      app: ${c.server.labels.app ?? c.server.name}
  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["${c.client.namespace}"]
`;
      writeAtomic(file, text);
      await applyObjects(c.lab, file, text);
      const zt = c.plan.pods.find((p) => p.role === 'ztunnel' && p.node === c.server.node)!;
      return { where: zt.name, netns: zt.netns, undo: [], policyFile: file };
    },
  },
];

export function findScenario(id: string): Scenario {
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s) throw new UserError(`no break scenario "${id}"`, `the scenarios are ${SCENARIOS.map((x) => x.id).join(', ')} (lab break list)`);
  return s;
}

/** A seeded pick (mulberry32), so `lab break --random --seed N` is the same fault everywhere. */
export function pickScenario(seed: number): Scenario {
  let a = (seed >>> 0) + 0x6d2b79f5;
  let t = Math.imul(a ^ (a >>> 15), 1 | a);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  a = ((t ^ (t >>> 14)) >>> 0);
  return SCENARIOS[a % SCENARIOS.length];
}

function plannedRules(build: LabBuild, netns: string): string[] {
  return (build.netns.find((n) => n.netns === netns)?.config.ruleset?.rules ?? []).map(ruleLine);
}

function loadLive(lab: string): Omit<Ctx, 'client' | 'server'> & { client?: PlannedPod; server?: PlannedPod } {
  const st = readState(lab);
  if (!st) throw new UserError(`no lab "${lab}" is up`, '`lab status` lists labs');
  if (st.phase !== 'up') throw new UserError(`lab "${lab}" is ${st.phase}, not up`, 'wait for `lab up` to finish, or `lab down` it');
  const plan = JSON.parse(readFileSync(labStateFile(lab, 'plan.json'), 'utf8')) as LabPlan;
  const build = JSON.parse(readFileSync(labStateFile(lab, 'build.json'), 'utf8')) as LabBuild;
  if (!build.tunnel) throw new UserError(`lab "${lab}" runs without the mesh (--no-mesh): there is no data path to break`, 'bring it up without --no-mesh');
  // The client: an ambient pod that only calls out (sleep); the server: an ambient endpoint of a
  // Service, on another node if there is one, so the fault sits on the path a trace walks.
  const ambient = plan.pods.filter((p) => p.role === 'workload' && p.mode === 'ambient');
  const endpoints = new Set(plan.services.flatMap((s) => s.endpoints.map((e) => e.ip)));
  const client = ambient.find((p) => p.app === 'sleep') ?? ambient.find((p) => !endpoints.has(p.ip));
  const servers = ambient.filter((p) => endpoints.has(p.ip) && p !== client);
  const server = servers.find((p) => p.node !== client?.node) ?? servers[0];
  return { lab, plan, build, client, server };
}

export interface BreakResult { lab: string; scenario?: string; seed?: number; symptom: string }

export async function injectFault(lab: string, pick: { id?: string; seed?: number }): Promise<BreakResult> {
  const s = pick.id !== undefined ? findScenario(pick.id) : pickScenario(pick.seed!);
  const live = loadLive(lab);
  if (!live.client || !live.server) {
    throw new UserError(`lab "${lab}" has no ambient client and ambient server pod to break the path between`, 'use a lab like topologies/demo.yaml (lab course start 09)');
  }
  const rec = readFaults(lab);
  if (rec.active.length) {
    throw new UserError(`lab "${lab}" already has a fault injected (${rec.active.length > 1 ? `${rec.active.length} faults` : 'one'}): one at a time`, 'lab break --reset undoes it');
  }
  const ctx = live as Ctx;
  const f = await s.inject(ctx);
  const fault: Fault = { scenario: s.id, injectedAt: new Date().toISOString(), ...f, ...(pick.seed !== undefined ? { seed: pick.seed } : {}) };
  rec.active.push(fault);
  rec.history.push({ scenario: fault.scenario, where: fault.where, injectedAt: fault.injectedAt, ...(fault.seed !== undefined ? { seed: fault.seed } : {}) });
  writeFaults(lab, rec);
  return { lab, ...(pick.id !== undefined ? { scenario: s.id } : { seed: pick.seed }), symptom: s.symptom(ctx) };
}

export interface ResetResult { lab: string; undone: Array<{ scenario: string; where: string }> }

/** Undoes every active fault, newest first; each undo is safe when the learner already fixed it. */
export async function resetFaults(lab: string): Promise<ResetResult> {
  loadLive(lab);
  const rec = readFaults(lab);
  const undone: ResetResult['undone'] = [];
  for (const f of [...rec.active].reverse()) {
    for (const argv of f.undo) await run(argv[0], argv.slice(1), { netns: f.netns });
    if (f.policyFile && existsSync(f.policyFile)) await applyObjects(lab, f.policyFile, readFileSync(f.policyFile, 'utf8'), { delete: true, ignoreNotFound: true });
    rec.active = rec.active.filter((x) => x !== f);
    writeFaults(lab, rec);
    undone.push({ scenario: f.scenario, where: f.where });
  }
  return { lab, undone };
}

/**
 * What differs, in the live lab, from what `lab up` (and live enrolment) set up, for the pieces
 * the scenarios break: the ip rules and ipset of every node, the TPROXY rules of every ztunnel
 * pod, planned rp_filter values, and policies a fault applied. Empty = healthy.
 */
export async function findFaults(lab: string): Promise<string[]> {
  const { plan, build } = loadLive(lab);
  const out: string[] = [];
  for (const node of plan.nodes) {
    const nb = build.netns.find((n) => n.netns === node.netns);
    if (!nb) continue;
    const rules = (await run('ip', ['rule', 'show'], { netns: node.netns })).stdout;
    for (const r of nb.config.rules) if (!new RegExp(`^${r.priority}:`, 'm').test(rules)) out.push(`${node.name}: ip rule ${r.priority} is missing`);
    const members = (await run('ipset', ['list', ZTUNNEL_IPSET], { netns: node.netns, reject: false })).stdout;
    for (const s of nb.config.ipsets ?? []) {
      for (const e of s.entries) if (!new RegExp(`^${e.ip.replace(/\./g, '\\.')}( |$)`, 'm').test(members)) out.push(`${node.name}: ${e.ip} is missing from ${s.name}`);
    }
    for (const [k, v] of Object.entries(nb.config.sysctls).filter(([k]) => k.endsWith('.rp_filter'))) {
      const now = (await run('sysctl', ['-n', k], { netns: node.netns, reject: false })).stdout.trim();
      if (now && now !== v) out.push(`${node.name}: ${k} is ${now}, not ${v}`);
    }
  }
  for (const zt of plan.pods.filter((p) => p.role === 'ztunnel')) {
    const live = new Set((await run('iptables', ['-t', 'mangle', '-S'], { netns: zt.netns })).stdout.split('\n'));
    const planned = plannedRules(build, zt.netns).filter((l) => l.includes('TPROXY'));
    for (const r of planned) if (!live.has(r)) out.push(`${zt.name}: the rule "${r}" is missing`);
    // A wrong rule left beside a re-added right one still catches the packets first.
    for (const r of live) if (r.includes('TPROXY') && !planned.includes(r)) out.push(`${zt.name}: the rule "${r}" is not one lab up made`);
  }
  const applied = new Set(readApplied(lab).map((o) => o.where.replace(/:\d+$/, '')));
  for (const f of readFaults(lab).active) if (f.policyFile && applied.has(f.policyFile)) out.push(`a policy applied from ${f.policyFile} is in force`);
  return out;
}
