// `lab`: the CLI. One module per verb; this file only wires them and maps errors to exit codes
// (2: something the user can fix, with a hint; 1: a failed system command or a bug).
//
// A verb's module is imported only when that verb runs: importing every verb (and yargs, and
// execa, and the planner) took longer than most verbs' own work. `lab exec` in its plain shape
// does not even load yargs (see quickExecArgs).
import type { CommandModule } from 'yargs';
import { UserError, CommandError } from '../util/errors.js';

type Verb = () => Promise<unknown>;
/** Verb name (the first word of its yargs `command`) -> its command module. One line per verb. */
const VERBS: Record<string, Verb> = {
  up: async () => (await import('./up.js')).upCommand,
  down: async () => (await import('./down.js')).downCommand,
  status: async () => (await import('./status.js')).statusCommand,
  exec: async () => (await import('./exec.js')).execCommand,
  logs: async () => (await import('./logs.js')).logsCommand,
  doctor: async () => (await import('./doctor.js')).doctorCommand,
  ztunnel: async () => (await import('./ztunnel.js')).ztunnelCommand,
  capture: async () => (await import('./capture.js')).captureCommand,
  trace: async () => (await import('./trace.js')).traceCommand,
  graph: async () => (await import('./graph.js')).graphCommand,
  apply: async () => (await import('./apply.js')).applyCommand,
  delete: async () => (await import('./apply.js')).deleteCommand,
  get: async () => (await import('./apply.js')).getCommand,
  'proxy-config': async () => (await import('./proxy-config.js')).proxyConfigCommand,
  course: async () => (await import('./course.js')).courseCommand,
  check: async () => (await import('./check.js')).checkCommand,
  enrol: async () => (await import('./enrol.js')).enrolCommand,
  unenrol: async () => (await import('./enrol.js')).unenrolCommand,
  label: async () => (await import('./enrol.js')).labelCommand,
  break: async () => (await import('./break.js')).breakCommand,
  fix: async () => (await import('./break.js')).fixCommand,
};

function fail(e: unknown): never {
  if (e instanceof UserError) {
    process.stderr.write(`lab: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    process.exit(2);
  }
  if (e instanceof CommandError) {
    process.stderr.write(`lab: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`lab: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

// `lab ... | head` closes the pipe early: that is the reader being done, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

function requireRoot(): void {
  if (process.getuid && process.getuid() !== 0) {
    fail(new UserError('lab must run as root (it creates network namespaces, links and iptables rules)', 'use sudo'));
  }
}

/** The verb named first on the command line loads alone; anything else (help, a typo, options first) loads them all. */
async function commandModules(first: string | undefined): Promise<CommandModule[]> {
  const names = first !== undefined && Object.hasOwn(VERBS, first) ? [first] : Object.keys(VERBS);
  return (await Promise.all(names.map((n) => VERBS[n]()))) as CommandModule[];
}

/**
 * Verbs with a plain form read without yargs (its ~75 ms of imports): each returns the handler
 * call for arguments it fully understands, else undefined and yargs reads them (help, errors).
 */
const QUICK: Record<string, (rest: string[]) => Promise<(() => Promise<void>) | undefined>> = {
  exec: async (rest) => {
    const { execCommand, quickExecArgs } = await import('./exec.js');
    const a = quickExecArgs(rest);
    return a && (() => execCommand.handler(a));
  },
  up: async (rest) => {
    const { upCommand, quickUpArgs } = await import('./up.js');
    const a = quickUpArgs(rest);
    return a && (() => upCommand.handler(a));
  },
};

async function main(args: string[]): Promise<void> {
  const quick = args[0] !== undefined && Object.hasOwn(QUICK, args[0]) ? await QUICK[args[0]](args.slice(1)) : undefined;
  if (quick) {
    requireRoot();
    return quick();
  }
  const [{ default: yargs }, modules] = await Promise.all([import('yargs'), commandModules(args[0])]);
  let y = yargs(args)
    .scriptName('lab')
    .usage('$0 <command> [options]\n\nIstio ambient mesh data path on one host: nodes and pods are network namespaces, with\nthe real istio-cni rules, Geneve tunnels, TPROXY and a ztunnel per node. Run as root.')
    .middleware((argv) => { if (argv._[0] !== 'help' && !argv.help) requireRoot(); })
    .parserConfiguration({ 'populate--': true });
  for (const m of modules) y = y.command(m);
  await y
    .demandCommand(1, 'give a command: lab up FILE, lab status, lab exec POD -- CMD, lab down (see --help)')
    .strict()
    .fail((msg, err) => {
      if (err) fail(err);
      fail(new UserError(msg, 'see `lab --help`'));
    })
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
}

// Node's own argv[0] and the script, as yargs' hideBin drops them.
await main(process.argv.slice(2)).catch(fail);
