// The one rule for lab names, shared by the topology's `name:` and every verb that takes a
// lab name (`up FILE NAME`, `down NAME`, `--lab`). A lab name becomes a directory under the
// state root and part of every network namespace name (`al-<lab>-...`), so it must be a
// plain DNS-1123 label: no '/', no '.', nothing a path or `ip netns` could read differently.
import { dns1123LabelProblem } from './k8s-names.js';
import { UserError } from '../util/errors.js';

/** Short enough that `al-<lab>-pod-<ns>.<pod>` stays a readable netns name. */
export const MAX_LAB_NAME = 20;

/** What is wrong with `name` as a lab name, or undefined when it is a valid one. */
export function labNameProblem(name: string): string | undefined {
  const p = dns1123LabelProblem(name, MAX_LAB_NAME);
  return p && `${p}; the lab name goes into network namespace names`;
}

/**
 * Checks a lab name the user gave on the command line (`what` says where: `NAME`, `--lab`)
 * and returns it; a bad one is a UserError (exit 2) before anything reads or touches the machine.
 */
export function checkLabName(name: string, what: string): string {
  const problem = labNameProblem(name);
  if (problem) {
    throw new UserError(`${what}: ${problem}`, `a lab name is what \`lab status\` lists, e.g. demo (the topology's name:)`);
  }
  return name;
}
