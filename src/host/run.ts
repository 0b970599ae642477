// Running system tools. Every command the lab runs goes through here so failures
// carry the command line and its stderr (exit 1), never a bare stack trace.
import { execa } from 'execa';
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
  const r = await execa(c, a, {
    input: opts.input,
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    stripFinalNewline: false,
    env: { LC_ALL: 'C' },
  });
  const res = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
  if (res.exitCode !== 0 && opts.reject !== false) {
    const shown = [c, ...a].join(' ');
    const input = opts.input ? `\n--- input ---\n${opts.input.split('\n').slice(0, 40).join('\n')}` : '';
    throw new CommandError(shown, res.stderr + input, res.exitCode);
  }
  return res;
}

/** `ip -n <netns> -batch -`: many ip commands for one namespace in one process. */
export async function ipBatch(netns: string | undefined, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  await run('ip', args, { input: lines.join('\n') + '\n' });
}
