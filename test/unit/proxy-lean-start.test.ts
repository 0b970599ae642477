// What keeps an idle proxy small: undici (~13 MB) is loaded by the first upstream pool, not by
// importing the L7 engine, and the start-up V8 flags are put back to V8's defaults.
import t from 'tap';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { UpstreamPools } from '../../src/l7/upstream.js';
import { L7Engine } from '../../src/l7/engine.js';
import { PROXY_NODE_FLAGS, V8_INTERRUPT_BUDGET } from '../../src/proxy/lean-start.js';

const undiciLoaded = (): boolean => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/undici/'));

t.test('the L7 engine is imported without undici; the first pool loads it', async (t) => {
  t.ok(L7Engine, 'engine module imported');
  t.notOk(undiciLoaded(), 'no undici module after importing the engine');
  const pools = new UpstreamPools(() => Promise.reject(new Error('never connects')));
  const pool = pools.pool({ address: '10.0.0.1', port: 8080, labels: {} });
  t.ok(undiciLoaded(), 'undici loaded by the first pool');
  t.equal(pool.constructor.name, 'Pool');
  t.equal(pools.pool({ address: '10.0.0.1', port: 8080, labels: {} }), pool, 'the same endpoint reuses its pool');
  await pools.close();
});

t.test('endLeanStart restores this Node\'s defaults: V8_INTERRUPT_BUDGET and Sparkplug on', (t) => {
  const opts = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
  const m = /--interrupt-budget \(.*\)\n\s+type: int\s+default: --interrupt-budget=(\d+)/.exec(opts);
  t.ok(m, 'node --v8-options lists --interrupt-budget');
  t.equal(Number(m?.[1]), V8_INTERRUPT_BUDGET);
  t.match(opts, /--sparkplug \(.*\)\n\s+type: bool\s+default: --sparkplug\n/, 'Sparkplug is on by default');
  t.same(PROXY_NODE_FLAGS, [`--interrupt-budget=${16 * V8_INTERRUPT_BUDGET}`, '--no-sparkplug']);
  t.end();
});
