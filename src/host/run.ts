// Running system tools. Every command the lab runs goes through here so failures
// carry the command line and its stderr (exit 1), never a bare stack trace.
// Plain child_process rather than a wrapper library: loading one (execa: ~100 modules) cost
// every verb more start-up time than most of the commands it runs.
import { spawn } from 'node:child_process';
import { CommandError } from '../util/errors.js';

export interface RunOptions {
  input?: string;
  /** Run inside /run/netns/<netns> (nsenter: lighter than `ip netns exec`, no mount namespace). */
  netns?: string;
  /** Don't throw on a non-zero exit; the caller looks at exitCode. */
  reject?: boolean;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export function nsWrap(netns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=/run/netns/${netns}`, '--', cmd, ...args]] : [cmd, args];
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [c, a] = nsWrap(opts.netns, cmd, args);
  const res = await collect(c, a, opts.input, opts.timeoutMs ?? 60_000);
  if (res.exitCode !== 0 && opts.reject !== false) {
    const shown = [c, ...a].join(' ');
    const input = opts.input ? `\n--- input ---\n${opts.input.split('\n').slice(0, 40).join('\n')}` : '';
    throw new CommandError(shown, res.stderr + input, res.exitCode);
  }
  return res;
}

/**
 * Runs to the end and collects both outputs; never rejects. A command that could not start
 * (ENOENT) or was killed (timeout) has exit code -1 and says why in stderr.
 */
function collect(cmd: string, args: string[], input: string | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let failure = '';
    const timer = setTimeout(() => {
      failure += `timed out after ${timeoutMs} ms\n`;
      child.kill('SIGTERM');
    }, timeoutMs);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => { failure += `${e.message}\n`; });
    // A command that exits without reading all its input is its own failure to report, not EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal && !failure) failure = `killed by ${signal}\n`;
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') + failure, exitCode: code !== null && code >= 0 ? code : -1 });
    });
  });
}

/** `ip -n <netns> -batch -`: many ip commands for one namespace in one process. */
export async function ipBatch(netns: string | undefined, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  await run('ip', args, { input: lines.join('\n') + '\n' });
}
