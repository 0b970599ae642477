// A proxy does not outlive a bug. An exception that escaped a connection's handling leaves
// state nobody reasoned about (a half-updated pool, a listener without its handler), so the
// process logs why and exits non-zero; the lab's supervisor restarts it, as a DaemonSet would.
import type { Logger } from 'pino';

/** Exit code for "died of an unexpected error" (sysexits EX_SOFTWARE). */
export const CRASH_EXIT_CODE = 70;

/** `log` must be synchronous (pino destination sync: true), or the last line may be lost. */
export function crashOnUncaught(log: Logger, proc: NodeJS.Process = process): void {
  const die = (kind: string) => (err: unknown): void => {
    log.fatal({ err }, `${kind}; exiting`);
    proc.exit(CRASH_EXIT_CODE);
  };
  proc.on('uncaughtException', die('uncaught exception'));
  proc.on('unhandledRejection', die('unhandled rejection'));
}
