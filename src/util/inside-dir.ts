// Defence in depth for paths built from user input (lab names, pod names, file names in
// `--out DIR`): whatever the validation upstream let through, a path the lab writes or
// deletes must stay inside the directory it belongs to. `..`, an absolute part or a part
// that resolves to the directory itself is an error, never a silent rewrite.
import { resolve, sep, relative, isAbsolute } from 'node:path';

export class PathEscapeError extends Error {
  constructor(readonly root: string, readonly parts: string[], readonly resolved: string) {
    super(`refusing path ${JSON.stringify(parts.join('/'))}: it resolves to ${resolved}, outside ${root}`);
    this.name = 'PathEscapeError';
  }
}

/**
 * `root` joined with `parts`, resolved, and asserted to be strictly inside `root`
 * (not `root` itself). Throws PathEscapeError otherwise. Purely lexical: callers that
 * delete also check what is on disk (see removeStateDir).
 */
export function insideDir(root: string, ...parts: string[]): string {
  const base = resolve(root);
  const p = resolve(base, ...parts);
  const rel = relative(base, p);
  if (!rel || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) || parts.some((x) => x.includes('\0'))) {
    throw new PathEscapeError(base, parts, p);
  }
  return p;
}
