// Pod entry: `node dist/apps/httpbin.js [--port 80] [--host 0.0.0.0] [--name POD] [--ready-file PATH]`
import { appLogger, exitOnSignals, parseCommonArgs, runMain, writeReadyFile } from './app-cli.js';
import { startHttpbin } from './httpbin-server.js';

runMain('httpbin', async () => {
  const { common } = parseCommonArgs(process.argv.slice(2), { port: 80, name: 'httpbin' });
  const log = appLogger('httpbin', common.name);
  const app = await startHttpbin({ port: common.port, host: common.host, name: common.name, log });
  log.info({ host: common.host, port: app.port }, 'listening');
  exitOnSignals(log, () => app.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'httpbin', port: app.port });
});
