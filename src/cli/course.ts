// `lab course list` and `lab course start NN`: the course's exercises and their labs. A course
// lab has the exercise's fixed name (ex01...), so starting one removes the others the course
// started (by those names only) and `lab check NN` knows where to look.
import type { Argv } from 'yargs';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { EXERCISES, exerciseFile } from '../course/exercises.js';
import { findExercise, requireWritten } from '../course/runner.js';
import { listLabs } from '../lab/down.js';
import { distDir, repoDir } from '../lab/paths.js';
import { table, printJson } from './output.js';
import { CommandError } from '../util/errors.js';

function self(args: string[]): number {
  const r = spawnSync(process.execPath, [resolve(distDir(), 'cli/main.js'), ...args], { stdio: 'inherit' });
  return r.status ?? 1;
}

export const courseCommand = {
  command: 'course <action> [exercise]',
  describe: 'The course: `course list`, `course start NN` (brings up exercise NN\'s lab)',
  builder: (y: Argv) => y
    .positional('action', { choices: ['list', 'start'] as const, describe: 'list | start' })
    .positional('exercise', { type: 'string', describe: 'exercise number for start, e.g. 01' })
    .option('json', { type: 'boolean' }),
  handler: async (argv: { action: 'list' | 'start'; exercise?: string; json?: boolean }) => {
    const up = new Set(await listLabs());
    if (argv.action === 'list') {
      const rows = EXERCISES.map((e) => ({ id: e.id, title: e.title, page: exerciseFile(e), lab: e.lab, up: up.has(e.lab), written: e.written }));
      if (argv.json) { printJson(rows); return; }
      process.stdout.write(table(['#', 'exercise', 'page', 'lab'], rows.map((r) => [
        r.id, r.title, r.written ? r.page : '(not written yet)', r.written ? `${r.lab}${r.up ? ' (up)' : ''}` : '-',
      ])) + '\n\nstart one: lab course start 01\n');
      return;
    }
    const e = findExercise(argv.exercise ?? '');
    requireWritten(e);
    for (const other of EXERCISES) {
      if (up.has(other.lab)) {
        process.stdout.write(`course: removing the lab of exercise ${other.id} (${other.lab})\n`);
        if (self(['down', other.lab]) !== 0) throw new CommandError(`lab down ${other.lab}`, 'see above');
      }
    }
    const rc = self(['up', resolve(repoDir(), e.topology), e.lab, ...e.upArgs]);
    if (rc !== 0) { process.exitCode = rc; return; }
    process.stdout.write(`\nexercise ${e.id}: ${e.title}\nread ${exerciseFile(e)}; when you are done: lab check ${e.id}\n`);
  },
};
