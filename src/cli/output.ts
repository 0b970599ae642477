// Human output: aligned tables. Machine output: JSON on stdout (every read-only verb has --json).

export function table(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r, ri) => {
      const line = r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
      return ri === 0 ? line.toUpperCase() : line;
    })
    .join('\n');
}

export const printJson = (v: unknown): void => {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
};

export const ms = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`);
