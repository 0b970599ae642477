import type { Argv } from 'yargs';
import { prepareUp, upSteps, runUpSteps, type UpContext } from '../lab/up.js';
import { downLab } from '../lab/down.js';
import { table, printJson, ms } from './output.js';
import { renderBuild } from './dry-run.js';
import { checkedLabArg } from './select.js';

type UpArgs = { file: string; name?: string; json?: boolean; keepOnFailure?: boolean; mesh?: boolean; dryRun?: boolean; timings?: boolean };

const UP_FLAGS: Record<string, Partial<UpArgs>> = {
  '--json': { json: true }, '--mesh': { mesh: true }, '--no-mesh': { mesh: false }, '--dry-run': { dryRun: true },
  '--keep-on-failure': { keepOnFailure: true }, '--timings': { timings: true },
};

/**
 * `lab up FILE [NAME] [flags]` read without yargs, whose loading costs more than planning a
 * small lab: only the plain shape (known boolean flags, at most two words); anything else,
 * `--help` and mistakes included, goes through yargs and its messages.
 */
export function quickUpArgs(args: string[]): UpArgs | undefined {
  const words: string[] = [];
  let flags: Partial<UpArgs> = {};
  for (const a of args) {
    if (Object.hasOwn(UP_FLAGS, a)) flags = { ...flags, ...UP_FLAGS[a] };
    else if (a !== '' && !a.startsWith('-')) words.push(a);
    else return undefined;
  }
  if (words.length < 1 || words.length > 2) return undefined;
  return { mesh: true, ...flags, file: words[0], ...(words[1] === undefined ? {} : { name: words[1] }) };
}

export const upCommand = {
  command: 'up <file> [name]',
  describe: 'Build a lab from a topology file: namespaces, links, rules, mesh, apps',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', describe: 'topology YAML (see topologies/)', demandOption: true })
      .positional('name', { type: 'string', describe: 'lab name (default: the topology\'s `name`, else the file name)' })
      .option('json', { type: 'boolean', describe: 'print the summary as JSON' })
      .option('mesh', { type: 'boolean', default: true, describe: 'install the ambient mesh; --no-mesh gives a plain cluster (every pod as mode none), the baseline for comparisons' })
      .option('dry-run', { type: 'boolean', describe: 'print everything `up` would create (namespaces, links, rules, files, certificates, processes) and create nothing; with --json, the build as data' })
      .option('timings', { type: 'boolean', describe: 'print where the time went on stderr: start-up, each stage before the steps, each step, and when each process was ready' })
      .option('keep-on-failure', { type: 'boolean', describe: 'leave a failed lab in place for inspection (remove it with `lab down`)' })
      .example('$0 up topologies/demo.yaml', 'two nodes, sleep and httpbin, ambient mode')
      .example('$0 up topologies/demo.yaml --dry-run', 'what that would create, without creating it'),
  handler: async (argv: UpArgs) => {
    // NAME replaces the topology's `name:` (prepareUp takes it as given), so it gets the same rule here.
    const name = checkedLabArg(argv.name, 'NAME');
    const ctx = await prepareUp(argv.file, { name, noMesh: argv.mesh === false, dryRun: argv.dryRun });
    if (argv.dryRun) {
      if (argv.json) printJson(ctx.build);
      else process.stdout.write(renderBuild(ctx.build));
      return;
    }
    const t0 = performance.now();
    const onSignal = () => {
      process.stderr.write(`\ninterrupted: removing the half-built lab "${ctx.plan.lab}"...\n`);
      (ctx.stopBackground?.() ?? Promise.resolve()).then(() => downLab(ctx.plan.lab)).finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      if (argv.json) {
        await runUpSteps(ctx); // nothing to render: the steps in order, without loading the task renderer
      } else {
        const { Listr } = await import('listr2');
        const tasks = new Listr(upSteps(ctx).map((s) => ({ title: s.title, task: s.run })), {
          renderer: process.stdout.isTTY ? 'default' : 'simple',
          exitOnError: true,
          rendererOptions: { collapseSubtasks: false },
        } as never);
        await tasks.run();
      }
    } catch (e) {
      if (!argv.keepOnFailure) {
        ctx.log?.error({ err: String(e) }, 'lab up failed; removing');
        await ctx.stopBackground?.();
        await downLab(ctx.plan.lab);
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const total = performance.now() - t0;
    summary(ctx, total, !!argv.json);
    if (argv.timings) process.stderr.write(timingsText(ctx));
  },
};

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000);
};

/** `--timings`: wall ms per stage, in the order they ran, and the processes slowest to be ready. */
export function timingsText(ctx: Pick<UpContext, 'prepareMs' | 'timings' | 'readyMs'>): string {
  const line = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${Math.round(v)}`).join(' · ');
  const ready = Object.entries(ctx.readyMs).sort((a, b) => b[1] - a[1]);
  return [
    'where the time went (wall ms):',
    `  before the steps  ${line(ctx.prepareMs)}   (start: Node start-up and imports)`,
    `  steps             ${line(ctx.timings)}`,
    ...(ready.length ? [`  ready after       ${line(Object.fromEntries(ready.slice(0, 5)))}${ready.length > 5 ? ` (+${ready.length - 5} sooner)` : ''}`] : []),
    `  total             ${Math.round(performance.now())} since the process started, ${cpuMs()} ms of CPU in this process`,
    '',
  ].join('\n');
}

function summary(ctx: UpContext, totalMs: number, json: boolean): void {
  const { plan } = ctx;
  if (json) {
    printJson({
      lab: plan.lab, tunnel: ctx.build.tunnel, totalMs: Math.round(totalMs), timingsMs: ctx.timings,
      prepareMs: ctx.prepareMs, readyMs: ctx.readyMs,
      nodes: plan.nodes.map((n) => ({ name: n.name, ip: n.ip, podCidr: n.podCidr, netns: n.netns })),
      pods: plan.pods.map((p) => ({ name: p.key, node: p.node, ip: p.ip, mode: p.mode, role: p.role, netns: p.netns })),
      services: plan.services.map((s) => ({ name: s.key, vip: s.vip, ports: s.ports, endpoints: s.endpoints.map((e) => e.ip) })),
    });
    return;
  }
  const out: string[] = [];
  out.push(`lab "${plan.lab}" is up in ${ms(totalMs)} (${ctx.noMesh ? 'no mesh' : `Geneve: ${ctx.build.tunnel}`})`, '');
  out.push(table(['pod', 'node', 'ip', 'mode', 'netns'],
    plan.pods.map((p) => [p.key, p.node, p.ip, p.role === 'workload' ? p.mode : p.role, p.netns])), '');
  out.push(table(['service', 'cluster ip', 'ports', 'endpoints'],
    plan.services.map((s) => [s.key, s.vip, s.ports.map((p) => `${p.port}->${p.targetPort}/${p.protocol}`).join(','), s.endpoints.map((e) => e.ip).join(',')])), '');
  const sleep = plan.pods.find((p) => p.role === 'workload' && p.app === 'sleep');
  // Suggest a request that answers: httpbin's /ip shows the source address; other apps get /.
  const appOf = (s: (typeof plan.services)[number]) => plan.pods.find((p) => p.key === s.endpoints[0]?.pod)?.app;
  const user = plan.services.filter((s) => s.namespace !== 'kube-system');
  const svc = user.find((s) => appOf(s) === 'httpbin') ?? user.find((s) => s.name === 'productpage') ?? user[0];
  const path = svc && appOf(svc) === 'httpbin' ? '/ip' : svc?.name === 'productpage' ? '/productpage' : '/';
  if (sleep && svc) out.push(`try: lab exec ${sleep.name} -- curl -s http://${svc.name}${svc.namespace === sleep.namespace ? '' : `.${svc.namespace}`}:${svc.ports[0].port}${path}`);
  out.push(`     lab status · lab down ${plan.lab}`);
  process.stdout.write(out.join('\n') + '\n');
}

