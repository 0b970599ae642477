// The learner's answers: ~/answers/NN.yaml (a map of the keys the exercise's questions name).
// Errors name the file, the line and what was expected, because the learner fixes them by hand.
import { readFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

/** Under sudo, the learner's own home (where they wrote the file), not root's. */
export function answersDir(): string {
  if (process.env.LAB_ANSWERS_DIR) return process.env.LAB_ANSWERS_DIR;
  const sudoUser = process.env.SUDO_USER;
  if (sudoUser && sudoUser !== 'root') {
    try {
      const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${sudoUser}:`));
      const home = line?.split(':')[5];
      if (home) return join(home, 'answers');
    } catch { /* fall back to HOME */ }
  }
  return join(homedir(), 'answers');
}

export type Answers = { ok: true; file: string; values: Record<string, unknown> } | { ok: false; file: string; error: string; hint: string };

export function loadAnswers(exercise: string, keys: string[]): Answers {
  const file = join(answersDir(), `${exercise}.yaml`);
  const shape = keys.map((k) => `${k}: ...`).join(', ');
  if (!existsSync(file)) return { ok: false, file, error: `${file} does not exist`, hint: `write your answers there as YAML (${shape}); the questions of the exercise say what each is` };
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { return { ok: false, file, error: `${file}: ${(e as Error).message}`, hint: 'make it readable' }; }
  const doc = parseDocument(text);
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line;
    return { ok: false, file, error: `${file}${line ? `:${line}` : ''}: not valid YAML (${e.message.split('\n')[0]})`, hint: `a YAML map, one "key: value" a line (${shape})` };
  }
  const v = doc.toJS() as unknown;
  if (v === null || v === undefined) return { ok: false, file, error: `${file} is empty`, hint: `write ${shape}` };
  if (typeof v !== 'object' || Array.isArray(v)) return { ok: false, file, error: `${file}: expected a map of answers (key: value), got ${Array.isArray(v) ? 'a list' : typeof v}`, hint: `write ${shape}` };
  const unknown = Object.keys(v).filter((k) => !keys.includes(k));
  if (unknown.length) return { ok: false, file, error: `${file}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, hint: `the keys are ${keys.join(', ')}` };
  return { ok: true, file, values: v as Record<string, unknown> };
}

/** Loose equality for hand-written answers: "0x100" == 256? no: strings compare trimmed, lists as sets. */
export function sameAnswer(given: unknown, expected: unknown): boolean {
  const norm = (x: unknown): string => String(x).trim().toLowerCase();
  if (Array.isArray(expected)) {
    const g = Array.isArray(given) ? given : given === undefined || given === null ? [] : [given];
    return g.length === expected.length && expected.every((e) => g.some((x) => norm(x) === norm(e)));
  }
  if (typeof expected === 'number') return Number(given) === expected || norm(given) === norm(expected);
  return norm(given) === norm(expected);
}
