// `lab exec` must start fast: main.ts imports no verb statically, exec's plain shape is read
// without yargs, and what exec imports reaches neither yargs, execa nor the planner.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quickExecArgs } from '../../src/cli/exec.js';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Static value imports of a source module (type-only imports are erased by tsc; dynamic import() is lazy). */
function staticImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(import|export)\s+(?!type\s)[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)].map((m) => m[2] ?? m[3]);
}

/** Every module a source file loads at import time: local files (relative to src/) and packages. */
function closure(entry: string): { local: Set<string>; packages: Set<string> } {
  const local = new Set<string>();
  const packages = new Set<string>();
  const walk = (file: string) => {
    const rel = file.slice(SRC.length + 1);
    if (local.has(rel)) return;
    local.add(rel);
    for (const s of staticImports(file)) {
      if (s.startsWith('.')) walk(resolve(dirname(file), s).replace(/\.js$/, '.ts'));
      else if (!s.startsWith('node:')) packages.add(s);
    }
  };
  walk(resolve(SRC, entry));
  return { local, packages };
}

t.test('main.ts loads no verb module and no package before it knows the verb', (t) => {
  const { local, packages } = closure('cli/main.ts');
  t.same([...packages], [], 'no package at start-up');
  t.same([...local].sort(), ['cli/main.ts', 'util/errors.ts']);
  t.end();
});

t.test('exec loads only the lab selection and state: no yargs, execa, planner', (t) => {
  const { local, packages } = closure('cli/exec.ts');
  t.same([...packages], [], `packages: ${[...packages].join(', ')}`);
  t.notOk([...local].some((f) => f.startsWith('plan/') || f.startsWith('lab/') || f.startsWith('host/')), [...local].join(', '));
  t.ok(local.size <= 10, `${local.size} modules`);
  t.end();
});

t.test('quickExecArgs takes the plain shape only', (t) => {
  t.same(quickExecArgs(['sleep', '--', 'curl', '-s', 'http://x']), { target: 'sleep', '--': ['curl', '-s', 'http://x'] });
  t.same(quickExecArgs(['--lab', 'demo', 'default/sleep', '--', 'true']), { target: 'default/sleep', lab: 'demo', '--': ['true'] });
  t.same(quickExecArgs(['sleep', '--lab=demo', '--', 'true']), { target: 'sleep', lab: 'demo', '--': ['true'] });
  t.same(quickExecArgs(['sleep', '--lab=', '--', 'true']), { target: 'sleep', lab: '', '--': ['true'] }, 'an empty --lab is given, and checked by the handler');
  t.same(quickExecArgs(['sleep', '--']), { target: 'sleep', '--': [] }, 'no command: the handler says so');
  // Everything else goes to yargs, for its help and its errors.
  for (const args of [
    ['sleep', 'true'], ['--help'], ['sleep', '--help', '--', 'true'], ['sleep', '-h', '--', 'x'],
    ['sleep', '--lab', '--', 'true'], ['--lab', 'a', '--lab', 'b', 'sleep', '--', 'x'], ['a', 'b', '--', 'x'],
    ['--', 'true'], ['sleep', '--json', '--', 'x'], [],
  ]) t.equal(quickExecArgs(args), undefined, args.join(' '));
  t.end();
});
