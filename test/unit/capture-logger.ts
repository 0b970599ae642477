// A pino logger whose lines the app tests can read back.
import { Writable } from 'node:stream';
import { pino } from 'pino';

export function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ base: null }, stream), lines };
}
