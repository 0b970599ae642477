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

/** One command of a batch: its argv and, optionally, what it reads on stdin. */
export interface BatchJob {
  cmd: string[];
  input?: string;
}

/** One argument for a POSIX shell script, single-quoted. */
export const shArg = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs many commands through one shell instead of one spawn() each: Node's spawn is a
 * synchronous fork+exec of the (large) CLI process, ~5-30 ms of blocked main thread per
 * command on a busy host, while a shell forks in well under a millisecond. A lab's `ip -batch`
 * and rule scripts (one per namespace, 240 for a 20x10 lab) go `parallel` subshells at a time,
 * each running its share in order. The first failure stops its share and throws the same
 * CommandError `run` would: that command, its stderr and its input.
 */
export async function runBatch(jobs: BatchJob[], parallel = 2, timeoutMs = 300_000): Promise<void> {
  await runStages([jobs], parallel, timeoutMs);
}

/**
 * runBatch for jobs in stages, still one spawn: every job of a stage has finished (each stage
 * split in `parallel` shares) before the next stage starts, and a failure stops the stages after it.
 */
export async function runStages(stages: BatchJob[][], parallel = 2, timeoutMs = 300_000): Promise<void> {
  const jobs = stages.flat();
  if (!jobs.length) return;
  let first = 0;
  const script = stages.filter((st) => st.length).map((st) => {
    const ks = st.map((_j, i) => first + i);
    first += st.length;
    const shares = Array.from({ length: Math.min(parallel, ks.length) }, (_, s) => ks.filter((_k, i) => i % parallel === s));
    if (shares.length === 1) return batchScript(jobs, shares[0]);
    // Each share in a background subshell; the stage fails if any share did.
    return shares.map((share, s) => `(\n${batchScript(jobs, share)}) &\nal_share_${s}=$!\n`).join('')
      + shares.map((_sh, s) => `wait $al_share_${s} || al_failed=1\n`).join('')
      + '[ -z "$al_failed" ] || exit 1\n';
  }).join('');
  const r = await run('sh', ['-s'], { input: script, reject: false, timeoutMs });
  if (r.exitCode === 0) return;
  const failed = /^@@failed (\d+)$/m.exec(r.stderr);
  const job = failed ? jobs[Number(failed[1])] : undefined;
  const stderr = r.stderr.replace(/^@@failed \d+\n?/gm, '');
  if (!job) throw new CommandError(`sh -s (batch of ${jobs.length} commands)`, stderr, r.exitCode);
  const input = job.input ? `\n--- input ---\n${job.input.split('\n').slice(0, 40).join('\n')}` : '';
  throw new CommandError(job.cmd.join(' '), stderr + input, r.exitCode);
}

/** Each job with its input as a here-document; `@@failed K` on stderr names the job that failed. */
export function batchScript(jobs: BatchJob[], ks: number[]): string {
  return ks.map((k) => {
    const { cmd, input } = jobs[k];
    const line = cmd.map(shArg).join(' ');
    const fail = `|| { echo "@@failed ${k}" >&2; exit 1; }`;
    if (input === undefined) return `${line} </dev/null ${fail}`;
    const tag = `AL_BATCH_EOF_${k}`;
    if (input.split('\n').includes(tag)) throw new Error(`input of ${cmd.join(' ')} contains its here-document tag`);
    return `${line} <<'${tag}' ${fail}\n${input.endsWith('\n') ? input : `${input}\n`}${tag}`;
  }).join('\n') + '\n';
}
