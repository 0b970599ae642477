// Where the compiled programs live, so the lab can start them inside namespaces.
// Works from dist/lab/paths.js (the CLI) and from src/lab/paths.ts (tests under ts-node).
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

export const repoDir = (): string => resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const distDir = (): string => resolve(repoDir(), 'dist');
