// `lab up` starts without yargs or listr2 in its plain shape: quickUpArgs reads it, and the task
// renderer loads only when it has something to render (not with --json).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quickUpArgs, timingsText } from '../../src/cli/up.js';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

t.test('quickUpArgs takes FILE [NAME] and the boolean flags, nothing else', (t) => {
  t.same(quickUpArgs(['topologies/demo.yaml']), { mesh: true, file: 'topologies/demo.yaml' });
  t.same(quickUpArgs(['demo.yaml', 'bo-x', '--json', '--no-mesh', '--timings']), { mesh: false, json: true, timings: true, file: 'demo.yaml', name: 'bo-x' });
  t.same(quickUpArgs(['--dry-run', 'demo.yaml', '--keep-on-failure', '--mesh']), { mesh: true, dryRun: true, keepOnFailure: true, file: 'demo.yaml' });
  t.same(quickUpArgs(['demo.yaml', 'Bad Name']), { mesh: true, file: 'demo.yaml', name: 'Bad Name' }, 'the name is checked by the handler, as with yargs');
  // Everything else goes to yargs, for its help and its errors.
  for (const args of [[], ['--help'], ['demo.yaml', '-h'], ['demo.yaml', 'a', 'b'], ['demo.yaml', '--bogus'], ['demo.yaml', '--json=false'],
    ['demo.yaml', '--name', 'x'], ['demo.yaml', ''], ['--json']]) t.equal(quickUpArgs(args), undefined, JSON.stringify(args));
  t.end();
});

t.test('cli/up.ts imports neither yargs nor listr2 up front', (t) => {
  const src = readFileSync(resolve(SRC, 'cli/up.ts'), 'utf8');
  t.notMatch(src, /^import\s+(?!type\s)[^;]*from\s+'(yargs|listr2)'/m);
  t.match(readFileSync(resolve(SRC, 'cli/main.ts'), 'utf8'), /up: async \(rest\)[^]*quickUpArgs\(rest\)/, 'main.ts takes the quick path for up');
  t.end();
});

t.test('--timings names every stage with its ms, slowest ready processes first', (t) => {
  const text = timingsText({
    prepareMs: { start: 180.4, load: 9, probe: 0.4, plan: 4, check: 1 },
    timings: { state: 4, netns: 9, links: 30 },
    readyMs: { a: 10, b: 300, c: 20, d: 5, e: 7, f: 1, g: 2 },
  });
  t.match(text, /before the steps {2}start 180 · load 9 · probe 0 · plan 4 · check 1/);
  t.match(text, /steps {13}state 4 · netns 9 · links 30/);
  t.match(text, /ready after {7}b 300 · c 20 · a 10 · e 7 · d 5 \(\+2 sooner\)/);
  t.match(text, /total {13}\d+ since the process started, \d+ ms of CPU in this process/);
  t.end();
});
