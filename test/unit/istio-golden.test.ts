// Every bad resource file in test/golden/bad-resources must fail with exactly the message in its
// .expected file. UPDATE_GOLDEN=1 rewrites the .expected files from the output.
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseResources } from '../../src/istio/parse.js';
import { UserError } from '../../src/util/errors.js';

const dir = 'test/golden/bad-resources';
const update = process.env.UPDATE_GOLDEN === '1';
const cases = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

t.ok(cases.length >= 25, `at least 25 bad resource files (found ${cases.length})`);

t.test('every .expected file has its .yaml', async (t) => {
  const orphans = readdirSync(dir).filter((f) => f.endsWith('.expected') && !existsSync(join(dir, f.replace(/\.expected$/, '.yaml'))));
  t.same(orphans, []);
});

for (const yaml of cases) {
  t.test(yaml, async (t) => {
    const file = join(dir, yaml);
    const expectedFile = file.replace(/\.yaml$/, '.expected');
    let message: string | undefined;
    try {
      parseResources(readFileSync(file, 'utf8'), file);
    } catch (err) {
      t.type(err, UserError, 'a user error, not a crash');
      message = (err as Error).message;
    }
    if (message === undefined) {
      t.fail(`${file} parsed without an error`);
      return;
    }
    t.match(message, new RegExp(`^${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: \\S.*: \\S.*: `), 'names file, line, column, object and field');
    if (update) writeFileSync(expectedFile, `${message}\n`);
    t.ok(existsSync(expectedFile), `${expectedFile} exists (run with UPDATE_GOLDEN=1 to create it)`);
    if (existsSync(expectedFile)) t.equal(message, readFileSync(expectedFile, 'utf8').replace(/\n$/, ''));
  });
}
