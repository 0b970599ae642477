// The waypoint process: `node dist/waypoint/main.js --config <file> --ready-file <file>`, run by
// the lab inside a waypoint pod's netns. stdout is the pino JSON log (per-request access logs
// included); SIGHUP or a change of the config file reloads routes and policies in place.
import { parseArgs } from 'node:util';
import { pino, destination } from 'pino';
import { exitOnSignals, runMain, writeReadyFile } from '../apps/app-cli.js';
import { crashOnUncaught } from '../proxy/crash.js';
import { endLeanStart } from '../proxy/lean-start.js';
import { loadWaypointConfig } from './config.js';
import { startWaypoint } from './waypoint.js';

runMain('waypoint', async () => {
  const { values } = parseArgs({ options: { config: { type: 'string' }, 'ready-file': { type: 'string' } }, strict: true });
  if (!values.config) throw new Error('usage: waypoint --config <file> [--ready-file <file>]');
  const { cfg, hash } = loadWaypointConfig(values.config);
  const log = pino({ name: 'waypoint', base: { gateway: `${cfg.gateway.namespace}/${cfg.gateway.name}`, pid: process.pid } }, destination({ dest: 1, sync: true }));
  crashOnUncaught(log);
  const wp = await startWaypoint(cfg, log, { configFile: values.config, configHash: hash });
  process.on('SIGHUP', () => void wp.reload('SIGHUP'));
  exitOnSignals(log, () => wp.close());
  if (values['ready-file']) writeReadyFile(values['ready-file'], { ports: wp.ports });
  endLeanStart();
});
