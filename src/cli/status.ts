import type { Argv } from 'yargs';
import { listLabs } from '../lab/down.js';
import { checkedLabArg, loadLab } from './select.js';
import { isAlive, processOwner } from '../host/processes.js';
import { table, printJson } from './output.js';
import { existsSync, readFileSync } from 'node:fs';
import type { LabBuild } from '../plan/lab-build.js';
import { labStateFile } from '../state/store.js';
import type { SupervisedRecord } from '../lab/supervisor.js';

/** What the supervisor last recorded about a process, as one short cell: the last exit, a back-off, a drain, a rollout. */
export function supervisionNote(p: SupervisedRecord, alive: boolean): string {
  const hhmmss = (iso: string): string => iso.slice(11, 19);
  // Code or signal only for processes the supervisor started itself (their parent); else just when.
  const how = p.lastExit && (p.lastExit.signal ?? p.lastExit.code);
  const exit = p.lastExit ? `${how !== undefined && how !== null ? `exit ${how}` : 'died'} at ${hhmmss(p.lastExit.at)}` : '';
  const notes = [exit];
  if (p.draining) notes.push(`draining until ${hhmmss(p.draining.until)}`);
  if (!alive && p.backoffUntil) notes.push(`backing off until ${hhmmss(p.backoffUntil)}`);
  if (p.rollout) notes.push(`${p.rollout.kind} restart at ${hhmmss(p.rollout.at)} (was ${p.rollout.previousPid})`);
  return notes.filter(Boolean).join('; ');
}

export async function labStatus(lab: string) {
  const { state, plan } = loadLab(lab);
  // Each process's ready file as planned (build.json); older labs: the name derived from the id.
  let readyFiles = new Map<string, string | undefined>();
  try {
    const build = JSON.parse(readFileSync(labStateFile(lab, 'build.json'), 'utf8')) as LabBuild;
    readyFiles = new Map(build.processes.map((p) => [p.id, p.readyFile]));
  } catch { /* no build yet */ }
  const procs = state.processes.map((p) => {
    const alive = isAlive(p.pid) && processOwner(p.pid)?.startsWith(`${lab}:`) === true;
    const file = readyFiles.has(p.id) ? readyFiles.get(p.id) : labStateFile(lab, 'ready', p.id.replace(/^pod\//, '').replace(/\//g, '.'));
    const ready = file === undefined ? alive : existsSync(file);
    const sup = p as SupervisedRecord;
    return {
      id: p.id, role: p.role, pid: p.pid, pod: p.pod, node: p.node, alive, ready: alive && ready, restarts: p.restarts ?? 0, log: p.log,
      ...(sup.lastExit ? { lastExit: sup.lastExit } : {}),
      ...(!alive && sup.backoffUntil ? { backoffUntil: sup.backoffUntil } : {}),
      ...(sup.draining ? { draining: sup.draining } : {}),
      ...(sup.rollout ? { rollout: sup.rollout } : {}),
      note: supervisionNote(sup, alive),
    };
  });
  // An old ztunnel that has drained and gone is no loss of health.
  const healthy = state.phase === 'up' && procs.every((p) => p.alive || p.draining);
  return {
    lab, phase: state.phase, healthy, tunnel: state.tunnel, file: state.file, createdAt: state.createdAt,
    nodes: plan.nodes.map((n) => ({ name: n.name, netns: n.netns, ip: n.ip, podCidr: n.podCidr, hostIp: n.hostIp })),
    pods: plan.pods.map((p) => ({
      name: p.key, node: p.node, ip: p.ip, mode: p.mode, role: p.role, app: p.app ?? (p.command ? 'command' : undefined), netns: p.netns,
      processes: procs.filter((x) => x.pod === p.key).map((x) => ({ id: x.id, pid: x.pid, alive: x.alive })),
    })),
    services: plan.services.map((s) => ({ name: s.key, vip: s.vip, ports: s.ports, endpoints: s.endpoints })),
    processes: procs,
  };
}

export const statusCommand = {
  command: 'status',
  describe: 'Show labs, nodes, pods, IPs, processes and health',
  builder: (y: Argv) => y.option('lab', { type: 'string', describe: 'only this lab' }).option('json', { type: 'boolean' }),
  handler: async (argv: { lab?: string; json?: boolean }) => {
    const one = checkedLabArg(argv.lab);
    const labs = one !== undefined ? [one] : await listLabs();
    const all = [];
    for (const l of labs) {
      try { all.push(await labStatus(l)); } catch (e) { all.push({ lab: l, phase: 'broken', healthy: false, error: (e as Error).message }); }
    }
    if (argv.json) return printJson(one !== undefined ? all[0] : { labs: all });
    if (!all.length) return void process.stdout.write('no lab is up\n');
    for (const s of all) {
      if (!('nodes' in s)) { process.stdout.write(`lab ${s.lab}: ${s.phase} (${'error' in s ? s.error : ''})\n`); continue; }
      const out = [`lab ${s.lab}: ${s.phase}, ${s.healthy ? 'healthy' : 'UNHEALTHY'}, ${s.tunnel ? `Geneve ${s.tunnel}` : 'no mesh'} (${s.file})`, ''];
      out.push(table(['node', 'eth0', 'pod cidr', 'netns'], s.nodes.map((n) => [n.name, n.ip, n.podCidr, n.netns])), '');
      out.push(table(['pod', 'node', 'ip', 'mode', 'app', 'pids'], s.pods.map((p) => [
        p.name, p.node, p.ip, p.role === 'workload' ? p.mode : p.role, p.app ?? '',
        p.processes.map((x) => `${x.pid}${x.alive ? '' : ' (dead)'}`).join(','),
      ])), '');
      const infra = s.processes.filter((p) => !p.pod || p.role !== 'app');
      const stateOf = (p: typeof infra[number]): string => (p.draining ? 'draining' : p.alive ? (p.ready ? 'ready' : 'running') : p.backoffUntil ? 'BACKOFF' : 'DEAD');
      if (infra.length) out.push(table(['process', 'pid', 'state', 'restarts', 'last'], infra.map((p) => [p.id, p.pid, stateOf(p), p.restarts, p.note])), '');
      out.push(table(['service', 'cluster ip', 'ports', 'endpoints'], s.services.map((v) => [
        v.name, v.vip, v.ports.map((p) => `${p.port}->${p.targetPort}/${p.protocol}`).join(','), v.endpoints.map((e) => e.ip).join(','),
      ])), '');
      process.stdout.write(out.join('\n'));
    }
  },
};
