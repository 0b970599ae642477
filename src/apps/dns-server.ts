// Pod entry: `node dist/apps/dns-server.js --config FILE [--port 53] [--host 0.0.0.0] [--ready-file PATH]`
// SIGHUP re-reads the config, as `lab` does after adding a Service.
import { appLogger, exitOnSignals, parseCommonArgs, runMain, UsageError, writeReadyFile } from './app-cli.js';
import { startDnsServer } from './cluster-dns.js';

runMain('dns-server', async () => {
  const { common, values } = parseCommonArgs(process.argv.slice(2), { port: 53, name: 'coredns' }, { config: { type: 'string' } });
  if (typeof values.config !== 'string') throw new UsageError('--config FILE is required');
  const log = appLogger('dns-server', common.name);
  const dns = await startDnsServer({ port: common.port, host: common.host, configFile: values.config, log });
  log.info({ host: common.host, port: dns.port, config: values.config }, 'listening');
  process.on('SIGHUP', () => {
    try {
      const cfg = dns.reload();
      log.info({ config: values.config, names: Object.keys(cfg.records).length }, 'config reloaded');
    } catch (err) {
      log.error({ err: String(err) }, 'config reload failed; keeping the previous records');
    }
  });
  exitOnSignals(log, () => dns.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'dns-server', port: dns.port });
});
