// `lab up` probes the host once per boot: probeHost keeps the facts in the state root, keyed by
// boot, kernel and geneve module, and probes again when the key changes or the file is bad.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeHost, HOST_FACTS_FILE } from '../../src/host/probe.js';

const root = mkdtempSync(join(tmpdir(), 'alt-facts-'));
const saved = process.env.AMBIENT_LAB_STATE_DIR;
process.env.AMBIENT_LAB_STATE_DIR = root;
t.teardown(() => {
  if (saved === undefined) delete process.env.AMBIENT_LAB_STATE_DIR;
  else process.env.AMBIENT_LAB_STATE_DIR = saved;
  rmSync(root, { recursive: true, force: true });
});

t.test('probed once, then read back; probed again when the key or the file is not right', async (t) => {
  let probes = 0;
  // Says kernel Geneve works whatever this kernel has: a read-back shows it was not probed again.
  const probe = async () => { probes++; return { kernelGeneve: true }; };
  t.same(await probeHost(probe), { kernelGeneve: true });
  t.equal(probes, 1, 'the first up probes');
  const file = join(root, HOST_FACTS_FILE);
  const cached = JSON.parse(readFileSync(file, 'utf8'));
  t.match(cached.key, new RegExp(`^\\S+ ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim().replace(/[.+]/g, '\\$&')} (no-)?geneve$`), 'keyed by boot id, kernel release, geneve module');
  t.same(await probeHost(probe), { kernelGeneve: true });
  t.equal(probes, 1, 'the next one reads the file');

  writeFileSync(file, JSON.stringify({ ...cached, key: 'another-boot' }));
  await probeHost(probe);
  t.equal(probes, 2, 'another boot: probed again');
  writeFileSync(file, '{not json');
  await probeHost(probe);
  t.equal(probes, 3, 'a damaged file: probed again');
  writeFileSync(file, JSON.stringify({ key: JSON.parse(readFileSync(file, 'utf8')).key, facts: {} }));
  await probeHost(probe);
  t.equal(probes, 4, 'facts without kernelGeneve: probed again');
});
