// Pod entry: `node dist/apps/bookinfo-details.js [--port 9080] [--host 0.0.0.0] [--name POD] [--ready-file PATH]`
import { appLogger, exitOnSignals, parseCommonArgs, runMain, writeReadyFile } from './app-cli.js';
import { BOOKINFO_PORT } from './bookinfo/common.js';
import { startDetails } from './bookinfo/details.js';

runMain('details', async () => {
  const { common } = parseCommonArgs(process.argv.slice(2), { port: BOOKINFO_PORT, name: 'details' });
  const log = appLogger('details', common.name);
  const app = await startDetails({ port: common.port, host: common.host, log });
  log.info({ host: common.host, port: app.port }, 'listening');
  exitOnSignals(log, () => app.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'details', port: app.port });
});
