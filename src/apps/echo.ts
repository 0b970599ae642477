// Pod entry: `node dist/apps/echo.js [--port 9000] [--host 0.0.0.0] [--sink] [--name POD] [--ready-file PATH]`
import { appLogger, exitOnSignals, parseCommonArgs, runMain, writeReadyFile } from './app-cli.js';
import { startEcho } from './echo-server.js';

runMain('echo', async () => {
  const { common, values } = parseCommonArgs(process.argv.slice(2), { port: 9000, name: 'echo' }, { sink: { type: 'boolean' } });
  const sink = values.sink === true;
  const log = appLogger('echo', common.name);
  const app = await startEcho({ port: common.port, host: common.host, sink, log });
  log.info({ host: common.host, port: app.port, mode: sink ? 'sink' : 'echo' }, 'listening');
  exitOnSignals(log, () => app.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'echo', port: app.port, sink });
});
