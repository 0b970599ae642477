// The ztunnel process: `node dist/ztunnel/main.js --config <file> --ready-file <file>`, run
// by the lab inside a node's ztunnel pod netns. stdout is the pino JSON log (access logs
// included); the ready file appears once every listener is up.
import { parseArgs } from 'node:util';
import { pino, destination } from 'pino';
import { exitOnSignals, runMain, writeReadyFile } from '../apps/app-cli.js';
import { loadZtunnelConfig } from './config.js';
import { startZtunnel } from './ztunnel.js';

runMain('ztunnel', async () => {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, 'ready-file': { type: 'string' } },
    strict: true,
  });
  if (!values.config) throw new Error('usage: ztunnel --config <file> [--ready-file <file>]');
  const cfg = loadZtunnelConfig(values.config);
  const log = pino({ name: 'ztunnel', base: { node: cfg.node, pid: process.pid } }, destination({ dest: 1, sync: true }));
  // A bug in one connection's handling must not take every connection of the node down.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  const zt = await startZtunnel(cfg, log);
  exitOnSignals(log, () => zt.close());
  if (values['ready-file']) writeReadyFile(values['ready-file'], { ports: zt.ports });
});
