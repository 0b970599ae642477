// Pod entry: `node dist/apps/bookinfo-productpage.js [--port 9080] [--host 0.0.0.0] [--name POD] [--ready-file PATH]`
import { appLogger, exitOnSignals, parseCommonArgs, runMain, writeReadyFile } from './app-cli.js';
import { BOOKINFO_PORT } from './bookinfo/common.js';
import { startProductpage } from './bookinfo/productpage.js';

runMain('productpage', async () => {
  const { common } = parseCommonArgs(process.argv.slice(2), { port: BOOKINFO_PORT, name: 'productpage' });
  const log = appLogger('productpage', common.name);
  const app = await startProductpage({ port: common.port, host: common.host, log });
  log.info({ host: common.host, port: app.port }, 'listening');
  exitOnSignals(log, () => app.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'productpage', port: app.port });
});
