// The ztunnel process: `node dist/ztunnel/main.js --config <file> --ready-file <file>`, run
// by the lab inside a node's ztunnel pod netns. stdout is the pino JSON log (access logs
// included); the ready file appears once every listener is up. SIGHUP (or a change of the
// config file) reloads the config; SIGTERM/SIGINT stop it. SIGUSR2 drains it (graceful
// restart, once its successor listens on the same ports): it stops accepting, lets its open
// connections end, and exits 0; the supervisor bounds the wait and sends SIGTERM past it.
//
// Only the config and the socket calls are imported up front: the capture listeners listen
// first (early-listen.ts), the rest (pino, HTTP/2, TLS, the proxy) is loaded after.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { endLeanStart } from '../proxy/lean-start.js';
import { loadZtunnelConfig } from './config.js';
import { listenCapture, type CaptureFds } from './early-listen.js';
import { startupTimes } from './startup.js';
import { isSuccessor } from './successor.js';

const options = { config: { type: 'string' }, 'ready-file': { type: 'string' } } as const;

/**
 * The capture listeners, or undefined when anything is wrong: then the ordinary start reports
 * it. Not for a successor in a graceful restart: its predecessor serves meanwhile, and
 * connections queued on a ztunnel still loading would only wait.
 */
function captureEarly(): CaptureFds | undefined {
  if (isSuccessor()) return undefined;
  try {
    const { values } = parseArgs({ options, strict: false });
    return typeof values.config === 'string' ? listenCapture(loadZtunnelConfig(values.config).cfg) : undefined;
  } catch {
    return undefined;
  }
}

const captureFds = captureEarly();
const listeningAt = performance.now();
const { exitOnSignals, runMain, writeReadyFile } = await import('../apps/app-cli.js');
const { pino, destination } = await import('pino');
const { crashOnUncaught } = await import('../proxy/crash.js');
const { startZtunnel } = await import('./ztunnel.js');
const loadedAt = performance.now();

runMain('ztunnel', async () => {
  const { values } = parseArgs({ options, strict: true });
  if (!values.config) throw new Error('usage: ztunnel --config <file> [--ready-file <file>]');
  const { cfg, hash } = loadZtunnelConfig(values.config);
  const log = pino({ name: 'ztunnel', base: { node: cfg.node, pid: process.pid } }, destination({ dest: 1, sync: true }));
  crashOnUncaught(log);
  const zt = await startZtunnel(cfg, log, { configFile: values.config, configHash: hash, ...(captureFds ? { captureFds } : {}) });
  process.on('SIGHUP', () => void zt.reload('SIGHUP'));
  let draining = false;
  process.on('SIGUSR2', () => {
    if (draining) return;
    draining = true;
    log.info({ signal: 'SIGUSR2' }, 'draining for a graceful restart');
    zt.drain().then(
      (r) => { log.info(r, 'drained'); process.exit(0); },
      (err: unknown) => { log.error({ err }, 'drain failed'); process.exit(1); },
    );
  });
  exitOnSignals(log, () => zt.close());
  const startup = startupTimes({ listeningAt: captureFds ? listeningAt : undefined, loadedAt });
  log.info({ startup }, 'start-up times');
  if (values['ready-file']) writeReadyFile(values['ready-file'], { ports: zt.ports, startup });
  endLeanStart();
});
