// The course's pure parts: the learner's answers file (errors name the file, the line and what
// was expected), loose comparison of hand-written answers, exercise lookup, and how checks are retried.
import t from 'tap';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAnswers, sameAnswer, answersDir } from '../../src/course/answers.js';
import { findExercise, requireWritten, runChecks, renderReport } from '../../src/course/runner.js';
import { EXERCISES, exerciseFile, type Check } from '../../src/course/exercises.js';
import { LiveLab } from '../../src/course/probe.js';
import type { LabPlan } from '../../src/topology/address-plan.js';
import { existsSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'answers-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
process.env.LAB_ANSWERS_DIR = dir;
const write = (id: string, text: string): void => { mkdirSync(dir, { recursive: true }); writeFileSync(join(dir, `${id}.yaml`), text); };

t.test('answers file errors', async (t) => {
  const missing = loadAnswers('91', ['a', 'b']);
  t.notOk(missing.ok);
  if (!missing.ok) { t.match(missing.error, /91\.yaml does not exist/); t.match(missing.hint, /a: \.\.\., b: \.\.\./); }
  write('92', 'a: 1\nb: [unclosed\n');
  const bad = loadAnswers('92', ['a', 'b']);
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.error, /92\.yaml:\d+: not valid YAML/);
  write('93', '- a\n- b\n');
  const list = loadAnswers('93', ['a']);
  if (!list.ok) t.match(list.error, /expected a map of answers \(key: value\), got a list/); else t.fail('a list was accepted');
  write('94', 'a: 1\nc: 2\n');
  const unknown = loadAnswers('94', ['a', 'b']);
  if (!unknown.ok) { t.match(unknown.error, /unknown key c/); t.match(unknown.hint, /the keys are a, b/); } else t.fail('unknown key accepted');
  write('95', '');
  const empty = loadAnswers('95', ['a']);
  if (!empty.ok) t.match(empty.error, /is empty/); else t.fail('empty accepted');
  write('96', 'a: 0x100\nb: "10.0.0.1"\n');
  const good = loadAnswers('96', ['a', 'b']);
  t.ok(good.ok);
  t.equal(answersDir(), dir);
});

t.test('sameAnswer', async (t) => {
  t.ok(sameAnswer('0x100', '0x100'));
  t.ok(sameAnswer(' 0X100 ', '0x100'), 'case and spaces');
  t.ok(sameAnswer(101, 101));
  t.ok(sameAnswer('101', 101), 'a number written as a string');
  t.notOk(sameAnswer(102, 101));
  t.ok(sameAnswer(['b', 'a'], ['a', 'b']), 'lists compare as sets');
  t.ok(sameAnswer('a', ['a']), 'a single value for a one-element list');
  t.notOk(sameAnswer(['a'], ['a', 'b']));
});

t.test('exercises', async (t) => {
  t.equal(findExercise('5').id, '05');
  t.equal(findExercise('ex08').id, '08');
  t.throws(() => findExercise('10'), /no exercise "10"/);
  t.equal(EXERCISES.map((e) => e.id).join(','), '01,02,03,04,05,06,07,08,09');
  for (const e of EXERCISES) {
    t.doesNotThrow(() => requireWritten(e), `${e.id} is written`);
    t.ok(existsSync(join(import.meta.dirname ?? '.', '..', '..', exerciseFile(e))), `${exerciseFile(e)} exists`);
    t.ok(existsSync(join(import.meta.dirname ?? '.', '..', '..', e.topology)), `${e.topology} exists`);
    t.match(e.lab, /^ex\d\d$/);
  }
});

/** An exercise of these checks alone, run against a lab nobody looks at (the checks are stubs). */
const runStubChecks = (id: string, checks: Check[]) => runChecks(
  { id, slug: 'x', title: 'x', written: true, lab: 'unit', topology: 'x', upArgs: [], answers: [], checks },
  new LiveLab('unit', { pods: [], nodes: [] } as unknown as LabPlan),
);

t.test('a check that fails for a missing earlier step is not retried; others are, until they pass', async (t) => {
  let tries = 0;
  const t0 = Date.now();
  const r = await runStubChecks('99', [
    { title: 'missing step', hint: 'h', retryMs: 5000, run: () => ({ ok: false, detail: 'no waypoint yet', hint: 'apply it first', final: true }) },
    { title: 'passes on the third try', hint: 'h', retryMs: 5000, run: () => ({ ok: ++tries >= 3, detail: `try ${tries}` }) },
  ]);
  t.ok(Date.now() - t0 < 3000, 'the final failure returned at once (only the retried check waited)');
  t.same(r.checks.map((c) => [c.pass, c.detail, c.hint]), [[false, 'no waypoint yet', 'apply it first'], [true, 'try 3', undefined]]);
  t.equal(tries, 3);
});

t.test('a check that never passes gives up at its bound; the report is one line a check, then the totals', async (t) => {
  let tries = 0;
  const t0 = Date.now();
  const r = await runStubChecks('98', [
    { title: 'never', hint: 'do the thing', retryMs: 1000, run: () => ({ ok: false, detail: `try ${++tries}` }) },
    { title: 'throws', hint: 'look at the lab', retryMs: 0, run: () => { throw new Error('lab ztunnel config node-a failed (exit 2)'); } },
    { title: 'always', hint: 'h', retryMs: 1000, run: () => ({ ok: true, detail: 'fine' }) },
  ]);
  const took = Date.now() - t0;
  t.ok(took >= 1000 && took < 2500, `retried for its 1 s bound, then gave up (${took} ms)`);
  t.ok(tries >= 2, `retried (${tries} tries)`);
  t.same([r.passed, r.failed], [1, 2]);
  t.equal(renderReport(r), [
    `FAIL 98.1 never: try ${tries}; hint: do the thing`,
    'FAIL 98.2 throws: lab ztunnel config node-a failed (exit 2); hint: look at the lab',
    'PASS 98.3 always: fine',
    '1 passed, 2 failed',
  ].join('\n') + '\n');
});
