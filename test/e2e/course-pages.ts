// How the course walk reads an exercise page: its ```sh blocks, the ```text excerpts that follow
// them, and the <!-- learner: NAME --> marks; and how an excerpt is compared with real output.
export type Item = { kind: 'sh'; code: string; line: number } | { kind: 'text'; text: string; line: number } | { kind: 'learner'; name: string; line: number };

export function parsePage(md: string): Item[] {
  const items: Item[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(sh|text)\s*$/.exec(lines[i]);
    const learner = /^<!-- learner: ([\w-]+) -->$/.exec(lines[i].trim());
    if (learner) items.push({ kind: 'learner', name: learner[1], line: i + 1 });
    if (!fence) continue;
    const start = i + 1;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    items.push(fence[1] === 'sh' ? { kind: 'sh', code: body.join('\n'), line: start } : { kind: 'text', text: body.join('\n'), line: start });
  }
  return items;
}

/** What changes from run to run: times, durations, PIDs, ephemeral ports; and spacing. */
export function mask(s: string): string {
  return s
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z?/g, 'TIME')
    .replace(/\b\d\d:\d\d:\d\d(\.\d+)?\b/g, 'TIME')
    .replace(/\b\d+(\.\d+)? ?(ms|s)\b/g, 'DUR')
    .replace(/\b(pid|PID)([":= ]+)\d+/g, '$1$2PID')
    .replace(/:(\d{5})\b/g, (m, p: string) => (Number(p) >= 32768 && Number(p) <= 60999 ? ':PORT' : m))
    .replace(/\s+/g, ' ').trim();
}

/** Each non-empty excerpt line must match an output line, in order; `...` matches anything. */
export function excerptMismatch(expected: string, actual: string): string | undefined {
  const out = actual.split('\n').map(mask).filter(Boolean);
  let at = 0;
  for (const raw of expected.split('\n')) {
    const want = mask(raw);
    if (!want) continue;
    const parts = want.split('...').map((p) => p.trim());
    const matches = (line: string): boolean => {
      let pos = 0;
      for (const p of parts) { const k = line.indexOf(p, pos); if (k < 0) return false; pos = k + p.length; }
      return true;
    };
    const k = out.findIndex((l, j) => j >= at && matches(l));
    if (k < 0) return `excerpt line not found (in order): ${raw.trim()}`;
    at = k + 1;
  }
  return undefined;
}

