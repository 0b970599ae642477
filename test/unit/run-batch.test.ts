// runBatch: many commands through a few shells, each with its own stdin; the first failure
// throws the CommandError of that command (its argv, stderr and input), as run() would.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBatch, runStages, batchScript, run } from '../../src/host/run.js';
import { CommandError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'lab-batch-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('every job runs with exactly its input, in whichever share', async (t) => {
  const tricky = "a line with 'quotes' and $HOME and `backticks`\nIPT_EOF\nAL_BATCH_EOF_9\nlast line without newline";
  const jobs = Array.from({ length: 7 }, (_, k) => ({ cmd: ['sh', '-c', `cat > ${join(dir, `out-${k}`)}`], input: k === 3 ? tricky : `job ${k}\n` }));
  jobs.push({ cmd: ['sh', '-c', `echo "no input: $(cat | wc -c)" > ${join(dir, 'out-7')}`], input: undefined as unknown as string });
  await runBatch(jobs, 3);
  for (let k = 0; k < 7; k++) {
    t.equal(readFileSync(join(dir, `out-${k}`), 'utf8'), k === 3 ? `${tricky}\n` : `job ${k}\n`, `job ${k}`);
  }
  t.equal(readFileSync(join(dir, 'out-7'), 'utf8'), 'no input: 0\n', 'a job without input reads /dev/null');
});

t.test('a failing job throws its own command, stderr and input; later jobs of its share do not run', async (t) => {
  const jobs = [
    { cmd: ['true'] },
    { cmd: ['sh', '-c', 'cat >/dev/null; echo "Error: nope on line 2" >&2; exit 3'], input: 'link add x\nlink add y\n' },
    { cmd: ['true'] },
    { cmd: ['touch', join(dir, 'after-failure')] },
  ];
  const e = await runBatch(jobs, 2).then(() => undefined, (err: unknown) => err);
  t.ok(e instanceof CommandError, 'a CommandError');
  const ce = e as CommandError;
  t.equal(ce.exitCode, 1);
  t.match(ce.message, /^command failed \(exit 1\): sh -c cat >\/dev\/null; echo "Error: nope on line 2" >&2; exit 3\nError: nope on line 2\n+--- input ---\nlink add x\nlink add y/);
  t.notMatch(ce.message, /@@failed/, 'the marker is not shown');
  t.notOk((await run('test', ['-e', join(dir, 'after-failure')], { reject: false })).exitCode === 0, 'the share stopped at its failure');
});

t.test('nothing to run runs nothing; a tag inside the input is refused', async (t) => {
  await runBatch([]);
  t.throws(() => batchScript([{ cmd: ['cat'], input: 'x\nAL_BATCH_EOF_0\ny' }], [0]), /contains its here-document tag/);
});

t.test('runStages: a stage starts when every job of the one before has finished; a failure stops the later stages', async (t) => {
  const log = join(dir, 'stages.log');
  // Stage 1's jobs are slow and fast; stage 2 must see both lines, whichever share ran them.
  const append = (s: string, delay = 0) => ({ cmd: ['sh', '-c', `sleep ${delay}; echo ${s} >> ${log}`] });
  await runStages([[append('a1', 0.2), append('a2'), append('a3', 0.1)], [{ cmd: ['sh', '-c', `test "$(wc -l < ${log})" -eq 3 && echo b1 >> ${log}`] }], [append('c1'), append('c2')]], 2);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.same(lines.slice(0, 3).sort(), ['a1', 'a2', 'a3']);
  t.equal(lines[3], 'b1', 'stage 2 ran after all of stage 1');
  t.same(lines.slice(4).sort(), ['c1', 'c2']);

  const after = join(dir, 'stage-after-failure');
  const e = await runStages([[append('x'), { cmd: ['sh', '-c', 'echo "Error: bad link" >&2; exit 2'], input: 'link add bad\n' }], [{ cmd: ['touch', after] }]], 2)
    .then(() => undefined, (err: unknown) => err);
  t.ok(e instanceof CommandError);
  t.match((e as CommandError).message, /^command failed \(exit 1\): sh -c echo "Error: bad link" >&2; exit 2\nError: bad link\n+--- input ---\nlink add bad/);
  t.notOk((await run('test', ['-e', after], { reject: false })).exitCode === 0, 'the next stage did not run');
});
