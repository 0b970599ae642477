// The sidecar proxy process: `node dist/sidecar-proxy/main.js --config <file> --ready-file <file>`,
// run by the lab in a sidecar pod's netns as uid/gid 1337 (so ISTIO_OUTPUT lets its own
// connections out uncaptured). stdout is the pino JSON log (per-connection and per-request
// access logs); SIGHUP or a change of the config file reloads routes, policies and certificates.
import { parseArgs } from 'node:util';
import { pino, destination } from 'pino';
import { exitOnSignals, runMain, writeReadyFile } from '../apps/app-cli.js';
import { crashOnUncaught } from '../proxy/crash.js';
import { endLeanStart } from '../proxy/lean-start.js';
import { loadSidecarConfig } from './config.js';
import { startSidecar } from './sidecar.js';

runMain('sidecar-proxy', async () => {
  const { values } = parseArgs({ options: { config: { type: 'string' }, 'ready-file': { type: 'string' } }, strict: true });
  if (!values.config) throw new Error('usage: sidecar-proxy --config <file> [--ready-file <file>]');
  const { cfg, hash } = loadSidecarConfig(values.config);
  const log = pino({ name: 'sidecar', base: { pod: `${cfg.pod.namespace}/${cfg.pod.name}`, pid: process.pid } }, destination({ dest: 1, sync: true }));
  crashOnUncaught(log);
  const sc = await startSidecar(cfg, log, { configFile: values.config, configHash: hash });
  process.on('SIGHUP', () => void sc.reload('SIGHUP'));
  exitOnSignals(log, () => sc.close());
  if (values['ready-file']) writeReadyFile(values['ready-file'], { ports: sc.ports });
  endLeanStart();
});
