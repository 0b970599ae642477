// `lab`: the CLI. One module per verb; this file only wires them and maps errors to exit codes
// (2: something the user can fix, with a hint; 1: a failed system command or a bug).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError, CommandError } from '../util/errors.js';
import { upCommand } from './up.js';
import { downCommand } from './down.js';
import { statusCommand } from './status.js';
import { execCommand } from './exec.js';
import { logsCommand } from './logs.js';
import { doctorCommand } from './doctor.js';
import { ztunnelCommand } from './ztunnel.js';
import { captureCommand } from './capture.js';
import { traceCommand } from './trace.js';
import { graphCommand } from './graph.js';
import { applyCommand, deleteCommand, getCommand } from './apply.js';
import { proxyConfigCommand } from './proxy-config.js';
import { courseCommand } from './course.js'; import { checkCommand } from './check.js';
import { enrolCommand, unenrolCommand, labelCommand } from './enrol.js'; import { breakCommand, fixCommand } from './break.js';

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

await yargs(hideBin(process.argv))
  .scriptName('lab')
  .usage('$0 <command> [options]\n\nIstio ambient mesh data path on one host: nodes and pods are network namespaces, with\nthe real istio-cni rules, Geneve tunnels, TPROXY and a ztunnel per node. Run as root.')
  .middleware((argv) => { if (argv._[0] !== 'help' && !argv.help) requireRoot(); })
  .parserConfiguration({ 'populate--': true })
  .command(upCommand as never)
  .command(downCommand as never)
  .command(statusCommand as never)
  .command(execCommand as never)
  .command(logsCommand as never)
  .command(doctorCommand as never)
  .command(ztunnelCommand as never)
  .command(captureCommand as never)
  .command(traceCommand as never)
  .command(graphCommand as never)
  .command(applyCommand as never)
  .command(deleteCommand as never)
  .command(getCommand as never)
  .command(proxyConfigCommand as never)
  .command(courseCommand as never).command(checkCommand as never)
  .command(enrolCommand as never).command(unenrolCommand as never).command(labelCommand as never).command(breakCommand as never).command(fixCommand as never)
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
  .parseAsync()
  .catch(fail);
