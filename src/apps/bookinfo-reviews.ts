// Pod entry: `node dist/apps/bookinfo-reviews.js --version v1|v2|v3 [--port 9080] [--host 0.0.0.0] [--name POD] [--ready-file PATH]`
// --name is the pod name the JSON reports as `podname`.
import { appLogger, exitOnSignals, parseCommonArgs, runMain, UsageError, writeReadyFile } from './app-cli.js';
import { BOOKINFO_PORT } from './bookinfo/common.js';
import { startReviews, REVIEWS_VERSIONS, type ReviewsVersion } from './bookinfo/reviews.js';

runMain('reviews', async () => {
  const { common, values } = parseCommonArgs(process.argv.slice(2), { port: BOOKINFO_PORT, name: 'reviews' }, { version: { type: 'string' } });
  const version = values.version;
  if (typeof version !== 'string' || !(REVIEWS_VERSIONS as readonly string[]).includes(version)) {
    throw new UsageError(`--version must be one of ${REVIEWS_VERSIONS.join(', ')}, got ${version === undefined ? 'nothing' : `"${String(version)}"`}`);
  }
  const log = appLogger('reviews', common.name);
  const app = await startReviews({ port: common.port, host: common.host, log, version: version as ReviewsVersion, podname: common.name });
  log.info({ host: common.host, port: app.port, version }, 'listening');
  exitOnSignals(log, () => app.close());
  if (common.readyFile) writeReadyFile(common.readyFile, { app: 'reviews', version, port: app.port });
});
