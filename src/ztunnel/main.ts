// The ztunnel process: `node dist/ztunnel/main.js --config <file> --ready-file <file>`, run
// by the lab inside a node's ztunnel pod netns. stdout is the pino JSON log (access logs
// included); the ready file appears once every listener is up. SIGHUP (or a change of the
// config file) reloads the config; SIGTERM/SIGINT stop it.
import { parseArgs } from 'node:util';
import { pino, destination } from 'pino';
import { exitOnSignals, runMain, writeReadyFile } from '../apps/app-cli.js';
import { crashOnUncaught } from '../proxy/crash.js';
import { loadZtunnelConfig } from './config.js';
import { startZtunnel } from './ztunnel.js';

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
  exitOnSignals(log, () => zt.close());
  if (values['ready-file']) writeReadyFile(values['ready-file'], { ports: zt.ports });
});
