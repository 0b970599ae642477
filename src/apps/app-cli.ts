// What every pod app shares: the common flags, the ready file the lab polls, a pino logger
// on stdout (the lab points stdout at the pod's log file) and a prompt, clean exit on
// SIGTERM/SIGINT.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { pino, destination, type Logger } from 'pino';

export interface CommonArgs {
  port: number;
  host: string;
  readyFile?: string;
  name: string;
}

type ExtraOptions = NonNullable<ParseArgsConfig['options']>;

/** A bad command line: printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Parses `--port --host --ready-file --name` plus the app's own options.
 * Throws with a readable message on a bad value; the entry turns that into exit 2.
 */
export function parseCommonArgs<E extends ExtraOptions>(
  argv: string[],
  defaults: { port: number; name: string },
  extra: E = {} as E,
): { common: CommonArgs; values: Record<string, string | boolean | undefined> } {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'ready-file': { type: 'string' },
        name: { type: 'string' },
        ...extra,
      },
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const port = v.port === undefined ? defaults.port : parsePort(String(v.port));
  return {
    common: {
      port,
      host: typeof v.host === 'string' ? v.host : '0.0.0.0',
      readyFile: typeof v['ready-file'] === 'string' ? v['ready-file'] : undefined,
      name: typeof v.name === 'string' ? v.name : defaults.name,
    },
    values: v,
  };
}

export function parsePort(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n > 65535) throw new UsageError(`--port must be an integer 0-65535, got "${s}"`);
  return n;
}

/**
 * The lab treats the file's existence as "ready", so it must never be seen half-written:
 * write a sibling temp file and rename it into place.
 */
export function writeReadyFile(path: string, content: Record<string, unknown>): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, ...content }) + '\n');
  renameSync(tmp, path);
}

/** JSON lines on stdout; synchronous so the last lines survive a prompt exit. */
export function appLogger(app: string, name: string): Logger {
  return pino({ name: app, base: { pod: name, pid: process.pid } }, destination({ dest: 1, sync: true }));
}

/**
 * Closes the app on SIGTERM/SIGINT and exits 0. `close` must not wait for idle keep-alive
 * peers; the guard timer makes sure the lab's `lab down` never has to escalate to SIGKILL.
 */
export function exitOnSignals(log: Logger, close: () => Promise<void>, graceMs = 1000): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(0), graceMs).unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while closing');
        process.exit(0);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Runs an app's main; a bad flag or a failed listen is printed and exits non-zero. */
export function runMain(app: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${app}: ${msg}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}

/** `::ffff:10.0.0.1` -> `10.0.0.1`: the lab compares plain IPv4 addresses. */
export function plainAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** server.listen() as a promise that rejects on EADDRINUSE and friends. */
export function listen(server: { once: Function; off: Function; listen: Function }, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
