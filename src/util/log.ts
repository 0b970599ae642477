// The lab's own log (pino JSON) lives in its state directory; `lab logs lab` shows it.
import { pino, destination, type Logger } from 'pino';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export function fileLogger(file: string, name: string): Logger {
  mkdirSync(dirname(file), { recursive: true });
  return pino({ name, base: { pid: process.pid } }, destination({ dest: file, append: true, sync: true }));
}

export const nullLogger = (): Logger => pino({ enabled: false });
