import type { Argv } from 'yargs';
import { resolveLab, loadLab } from './select.js';
import { run } from '../host/run.js';
import { printJson, table } from './output.js';
import { UserError } from '../util/errors.js';
import { ADMIN_PORT } from '../mesh/ports.js';
import { isAlive, processOwner } from '../host/processes.js';
import {
  awaitRestart, DRAIN_DEFAULT_MS, parseDuration, submitRestart, TERM_GRACE_MS, type RestartResult,
} from '../lab/ztunnel-restart.js';
import { labStateFile, type LabState } from '../state/store.js';

/** Reads a ztunnel's admin endpoint (127.0.0.1:ADMIN_PORT inside its pod, like `istioctl zc`). */
async function configDump(netns: string): Promise<any> {
  const r = await run('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${ADMIN_PORT}/config_dump`], { netns, reject: false });
  if (r.exitCode !== 0) throw new UserError(`the ztunnel in ${netns} does not answer on 127.0.0.1:${ADMIN_PORT}`, 'check `lab status` and `lab logs ztunnel-NODE`');
  return JSON.parse(r.stdout);
}

/** The lab's live supervisor, which carries out restarts; a UserError when there is none. */
function liveSupervisor(lab: string, state: LabState): number {
  const sup = state.processes.find((p) => p.role === 'supervisor');
  if (!sup || !isAlive(sup.pid) || !processOwner(sup.pid)?.startsWith(`${lab}:`)) {
    throw new UserError(`lab "${lab}" has no running supervisor, which is what restarts ztunnels`, `bring the lab up again: lab down ${lab} && lab up ${state.file}`);
  }
  return sup.pid;
}

async function restart(lab: string, state: LabState, id: string, graceful: boolean, drainMs: number, json?: boolean): Promise<void> {
  const rec = state.processes.find((p) => p.id === id);
  if (!rec) throw new UserError(`lab "${lab}" runs no ${id}`, 'a lab brought up with --no-mesh has no ztunnels');
  const supPid = liveSupervisor(lab, state);
  const key = submitRestart(lab, { id, kind: graceful ? 'graceful' : 'plain', drainMs });
  // The supervisor looks every 100 ms; the new ztunnel has up to 15 s to get ready, the old one drainMs to drain.
  const r: RestartResult | undefined = await awaitRestart(lab, key, 15_000 + drainMs + TERM_GRACE_MS + 5000, () => isAlive(supPid));
  // A supervisor from before `lab ztunnel restart` existed never answers: the lab needs bringing up again.
  if (!r) throw new Error(`the supervisor (pid ${supPid}) did not carry out the restart of ${id}; its log: ${labStateFile(lab, 'logs', 'supervisor.log')}`);
  if (json) printJson(r);
  if (!r.ok) {
    if (!json) process.stderr.write(`error: ${r.error}\n`);
    process.exitCode = 1;
    return;
  }
  if (json) return;
  const lines = r.kind === 'graceful'
    ? [
      `${id}: graceful restart, pid ${r.oldPid} -> ${r.newPid}`,
      `  new ztunnel ready after ${r.newReadyMs} ms, listening beside the old one (SO_REUSEPORT)`,
      `  old ztunnel stopped accepting and ${r.oldEnded === 'exited' ? `drained in ${r.drainedMs} ms` : `was still busy after ${drainMs} ms: ended with ${r.oldEnded}`}` +
        (r.openAtDrain ? ` (open then: ${Object.entries(r.openAtDrain).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''),
    ]
    : [
      `${id}: restart, pid ${r.oldPid} -> ${r.newPid}`,
      `  old ztunnel stopped (${r.oldEnded}); nothing listened for ${r.gapMs} ms until the new one was ready`,
    ];
  process.stdout.write(lines.join('\n') + '\n');
}

export const ztunnelCommand = {
  command: 'ztunnel <what> <node>',
  describe: 'A node\'s ztunnel: `config` shows its workloads (seed talk format), services and policies; `restart` replaces it (--graceful: without dropping connections)',
  builder: (y: Argv) =>
    y
      .positional('what', { choices: ['config', 'restart'], describe: 'what to do' })
      .positional('node', { type: 'string', describe: 'node name (its ztunnel pod is istio-system/ztunnel-NODE)' })
      .option('lab', { type: 'string' })
      .option('json', { type: 'boolean', describe: 'config: the full /config_dump; restart: the result as data' })
      .option('graceful', { type: 'boolean', describe: 'restart: start the new ztunnel first, then drain the old one' })
      .option('drain-timeout', { type: 'string', describe: `restart --graceful: how long the old ztunnel may take to finish its connections (default ${DRAIN_DEFAULT_MS / 1000}s)` })
      .example('$0 ztunnel config node-a --json', 'workloads as ztunnel sees them')
      .example('$0 ztunnel restart node-a --graceful', 'replace node-a\'s ztunnel without failing a connection'),
  handler: async (argv: { what: string; node: string; lab?: string; json?: boolean; graceful?: boolean; drainTimeout?: string }) => {
    const lab = await resolveLab(argv.lab);
    const { plan, state } = loadLab(lab);
    const node = plan.nodes.find((n) => n.name === argv.node);
    if (!node) throw new UserError(`no node "${argv.node}"`, `nodes: ${plan.nodes.map((n) => n.name).join(', ')}`);
    if (argv.what === 'restart') {
      if (argv.drainTimeout !== undefined && !argv.graceful) throw new UserError('--drain-timeout goes with --graceful', 'a plain restart stops the old ztunnel at once');
      const drainMs = argv.drainTimeout === undefined ? DRAIN_DEFAULT_MS : parseDuration(argv.drainTimeout);
      if (drainMs === undefined) throw new UserError(`--drain-timeout "${argv.drainTimeout}" is not a duration from 100ms to 5m`, 'e.g. 10s, 500ms, 2m, or a number of seconds');
      return restart(lab, state, `ztunnel/${node.name}`, !!argv.graceful, drainMs, argv.json);
    }
    if (argv.graceful || argv.drainTimeout !== undefined) throw new UserError('--graceful and --drain-timeout go with `lab ztunnel restart`');
    const zt = plan.pods.find((p) => p.key === node.ztunnel)!;
    const dump = await configDump(zt.netns);
    if (argv.json) return printJson(dump);
    const ws = Object.values(dump.workloads ?? {}) as any[];
    const v = dump.config;
    process.stdout.write(`ztunnel ${zt.key} on ${node.name}${v ? ` (config version ${v.version}, ${v.hash}, loaded ${v.loadedAt})` : ''}\n\n`);
    process.stdout.write(table(['workload ip', 'name', 'namespace', 'service account', 'protocol', 'node', 'waypoint', 'policies'],
      ws.map((w) => [w.workloadIp, w.name, w.namespace, w.serviceAccount, w.protocol, w.node, (w.waypointAddresses ?? []).join(','), (w.authorizationPolicies ?? []).join(',')])) + '\n\n');
    const svcs = (dump.services ?? []) as any[];
    if (svcs.length) {
      process.stdout.write(table(['service', 'vips', 'ports', 'endpoints'], svcs.map((s) => [s.hostname ?? s.name, (s.vips ?? []).join(','), JSON.stringify(s.ports), (s.endpoints ?? []).join(',')])) + '\n');
    }
  },
};
