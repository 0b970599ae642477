// Pod entry: `node dist/apps/bookinfo-ratings.js [--port 9080] [--host 0.0.0.0] [--name POD] [--ready-file PATH]`
import { appLogger, exitOnSignals, parseCommonArgs, runMain, writeReadyFile } from './app-cli.js';
import { BOOKINFO_PORT } from './bookinfo/common.js';
import { startRatings } from './bookinfo/ratings.js';

runMain('ratings', async () => {
  const { common } = parseCommonArgs(process.argv.slice(2), { port: BOOKINFO_PORT, name: 'ratings' });
  const log = appLogger('ratings', common.name);
  const app = await startRatings({ port: common.port, host: common.host, log });
  log.info({ host: common.host, port: app.port }, 'listening');
  exitOnSignals(log, () => app.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'ratings', port: app.port });
});
