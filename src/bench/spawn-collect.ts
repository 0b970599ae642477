// A child process run to completion with its output collected: the bench's load client and
// its in-netns commands (curl, nsenter) all need the same thing, bounded by a timeout.
import { spawn } from 'node:child_process';

export interface Collected {
  code: number | null;
  out: string;
  err: string;
}

/** Runs argv[0] with the rest as arguments; SIGKILL after `timeoutMs`. Rejects only if it cannot start. */
export function spawnCollect(argv: readonly string[], timeoutMs: number): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}
