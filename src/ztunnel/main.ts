// The ztunnel process: `node dist/ztunnel/main.js --config <file> --ready-file <file>`, run
// by the lab inside a node's ztunnel pod netns. stdout is the pino JSON log (access logs
// included); the ready file appears once every listener is up. SIGHUP (or a change of the
// config file) reloads the config; SIGTERM/SIGINT stop it. SIGUSR2 drains it (graceful
// restart, once its successor listens on the same ports): it stops accepting, lets its open
// connections end, and exits 0; the supervisor bounds the wait and sends SIGTERM past it.
import { parseArgs } from 'node:util';
import { pino, destination } from 'pino';
import { exitOnSignals, runMain, writeReadyFile } from '../apps/app-cli.js';
import { crashOnUncaught } from '../proxy/crash.js';
import { loadZtunnelConfig } from './config.js';
import { startZtunnel } from './ztunnel.js';
import { startupTimes } from './startup.js';

// Where a (re)start's time goes, from the process's start (performance.timeOrigin): Node's own
// start-up, loading our modules (everything above has been evaluated by now), then config,
// certificates and listeners. CPU time too: on a loaded machine the wall times mostly measure
// the wait for a CPU, the CPU time is what the start costs.
const loadedAt = performance.now();

runMain('ztunnel', async () => {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, 'ready-file': { type: 'string' } },
    strict: true,
  });
  if (!values.config) throw new Error('usage: ztunnel --config <file> [--ready-file <file>]');
  const { cfg, hash } = loadZtunnelConfig(values.config);
  const log = pino({ name: 'ztunnel', base: { node: cfg.node, pid: process.pid } }, destination({ dest: 1, sync: true }));
  crashOnUncaught(log);
  const zt = await startZtunnel(cfg, log, { configFile: values.config, configHash: hash });
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
  const startup = startupTimes(loadedAt);
  log.info({ startup }, 'start-up times');
  if (values['ready-file']) writeReadyFile(values['ready-file'], { ports: zt.ports, startup });
});
