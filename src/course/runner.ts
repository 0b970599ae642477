// Runs an exercise's checks against its live lab: each check is retried until it passes or its
// bound runs out; answer checks compare ~/answers/NN.yaml with what the lab has.
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../util/errors.js';
import { LiveLab } from './probe.js';
import { loadAnswers, sameAnswer } from './answers.js';
import { EXERCISES, exerciseFile, type Exercise, type Outcome } from './exercises.js';

export interface CheckResult { id: string; title: string; pass: boolean; detail: string; hint?: string }
export interface CheckReport { exercise: string; lab: string; checks: CheckResult[]; passed: number; failed: number }

/** "5", "05", "ex05" -> the exercise; anything else is the learner's typo (exit 2). */
export function findExercise(arg: string | number): Exercise {
  const s = String(arg).trim().replace(/^ex/, '');
  const id = /^\d{1,2}$/.test(s) ? s.padStart(2, '0') : s;
  const e = EXERCISES.find((x) => x.id === id);
  if (!e) throw new UserError(`no exercise "${arg}"`, `the exercises are ${EXERCISES.map((x) => x.id).join(', ')} (lab course list)`);
  return e;
}

export function requireWritten(e: Exercise): void {
  if (!e.written) throw new UserError(`exercise ${e.id} (${e.title}) is not written yet`, 'lab course list shows the exercises that are');
}

export function liveLabOf(e: Exercise): LiveLab {
  const lab = LiveLab.load(e.lab);
  if (!lab) throw new UserError(`exercise ${e.id}'s lab "${e.lab}" is not up`, `start it with: lab course start ${e.id}`);
  return lab;
}

async function retried(retryMs: number, f: () => Outcome | Promise<Outcome>): Promise<Outcome> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    let o: Outcome;
    try { o = await f(); } catch (e) { o = { ok: false, detail: (e as Error).message }; }
    if (o.ok || o.final || Date.now() >= deadline) return o;
    await sleep(400);
  }
}

export async function runChecks(e: Exercise, lab: LiveLab): Promise<CheckReport> {
  const checks: CheckResult[] = [];
  let n = 0;
  for (const c of e.checks) {
    const o = await retried(c.retryMs, () => c.run(lab));
    checks.push({ id: `${e.id}.${++n}`, title: c.title, pass: o.ok, detail: o.detail, ...(o.ok ? {} : { hint: o.hint ?? c.hint }) });
  }
  if (e.answers.length) {
    const a = loadAnswers(e.id, e.answers.map((x) => x.key));
    // One line for a missing or unreadable file, not one per question.
    if (!a.ok) checks.push({ id: `${e.id}.${++n}`, title: `answers (${e.answers.map((x) => x.key).join(', ')})`, pass: false, detail: a.error, hint: a.hint });
    for (const q of a.ok ? e.answers : []) {
      if (!a.ok) break;
      const id = `${e.id}.${++n}`;
      const title = `answer ${q.key}: ${q.about}`;
      if (!(q.key in a.values)) { checks.push({ id, title, pass: false, detail: `${a.file} has no ${q.key}`, hint: `add "${q.key}: ..." (see ${exerciseFile(e)})` }); continue; }
      let expected: unknown;
      try { expected = q.expected(lab); } catch (err) { checks.push({ id, title, pass: false, detail: (err as Error).message }); continue; }
      const given = a.values[q.key];
      checks.push(sameAnswer(given, expected)
        ? { id, title, pass: true, detail: JSON.stringify(given) }
        : { id, title, pass: false, detail: `${JSON.stringify(given)} is not what the lab has`, hint: `look at: ${q.lookAt}` });
    }
  }
  const passed = checks.filter((c) => c.pass).length;
  return { exercise: e.id, lab: e.lab, checks, passed, failed: checks.length - passed };
}

export function renderReport(r: CheckReport): string {
  const out = r.checks.map((c) => (c.pass
    ? `PASS ${c.id} ${c.title}: ${c.detail}`
    : `FAIL ${c.id} ${c.title}: ${c.detail}; hint: ${c.hint ?? '-'}`));
  out.push(`${r.passed} passed, ${r.failed} failed`);
  return out.join('\n') + '\n';
}
