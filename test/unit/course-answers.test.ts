// The course's pure parts: the learner's answers file (errors name the file, the line and what
// was expected), loose comparison of hand-written answers, and exercise lookup.
import t from 'tap';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAnswers, sameAnswer, answersDir } from '../../src/course/answers.js';
import { findExercise, requireWritten } from '../../src/course/runner.js';
import { EXERCISES, exerciseFile } from '../../src/course/exercises.js';
import { existsSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'answers-'));
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
  t.throws(() => findExercise('9'), /no exercise "9"/);
  t.throws(() => requireWritten(findExercise('06')), /exercise 06 .* is not written yet/);
  for (const e of EXERCISES.filter((x) => x.written)) {
    t.ok(existsSync(join(import.meta.dirname ?? '.', '..', '..', exerciseFile(e))), `${exerciseFile(e)} exists`);
    t.match(e.lab, /^ex\d\d$/);
  }
});
