// A small grouped bar chart as SVG text, for the bench's README: one panel per figure (each
// with its own scale, since milliseconds, Mbit/s and MB do not share an axis), one bar per
// series in every panel, the value written above each bar, a legend of the series' colours.
// Pure string building: no chart library for a few rectangles.

export interface BarPanel {
  title: string;
  /** One value per series, in the order of `series`; undefined or NaN draws no bar ("n/a"). */
  values: ReadonlyArray<number | undefined>;
  /** How a value is written above its bar. */
  format?: (v: number) => string;
}

export interface GroupedBars {
  title: string;
  subtitle?: string;
  series: readonly string[];
  panels: readonly BarPanel[];
}

export const PALETTE = ['#8c8c8c', '#1f77b4', '#17becf', '#d62728', '#ff7f0e', '#2ca02c', '#9467bd'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (n: number): string => String(Math.round(n * 10) / 10);
const defaultFormat = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

const BAR = 22;
const GAP = 6;
const PANEL_PAD = 18;
const PLOT_H = 160;
const TOP = 64;

export function groupedBarsSvg(c: GroupedBars): string {
  const n = c.series.length;
  const panelW = n * BAR + (n - 1) * GAP + 2 * PANEL_PAD;
  const width = Math.max(c.panels.length * panelW + 20, 420);
  const legendY = TOP + PLOT_H + 58;
  const legendRows = Math.ceil(n / 3);
  const height = legendY + legendRows * 18 + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
  ];
  if (c.subtitle) out.push(`<text x="10" y="36" fill="#555555">${esc(c.subtitle)}</text>`);
  c.panels.forEach((p, i) => {
    const x0 = 10 + i * panelW;
    const finite = p.values.filter((v): v is number => v !== undefined && Number.isFinite(v) && v >= 0);
    const max = Math.max(...finite, 0);
    const fmt = p.format ?? defaultFormat;
    out.push(`<g class="panel">`, `<text x="${num(x0 + panelW / 2)}" y="${TOP - 14}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
    p.values.forEach((v, j) => {
      const x = x0 + PANEL_PAD + j * (BAR + GAP);
      if (v === undefined || !Number.isFinite(v) || v < 0) {
        out.push(`<text x="${num(x + BAR / 2)}" y="${TOP + PLOT_H - 4}" text-anchor="middle" fill="#999999">n/a</text>`);
        return;
      }
      const h = max > 0 ? (v / max) * PLOT_H : 0;
      const y = TOP + PLOT_H - h;
      out.push(`<rect class="bar" x="${num(x)}" y="${num(y)}" width="${BAR}" height="${num(h)}" fill="${PALETTE[j % PALETTE.length]}"><title>${esc(`${c.series[j]}: ${fmt(v)}`)}</title></rect>`,
        `<text x="${num(x + BAR / 2)}" y="${num(y - 3)}" text-anchor="middle" font-size="9">${esc(fmt(v))}</text>`);
    });
    out.push(`<line x1="${x0 + PANEL_PAD - 4}" y1="${TOP + PLOT_H}" x2="${x0 + panelW - PANEL_PAD + 4}" y2="${TOP + PLOT_H}" stroke="#333333"/>`, `</g>`);
  });
  c.series.forEach((s, j) => {
    const x = 10 + (j % 3) * 200;
    const y = legendY + Math.floor(j / 3) * 18;
    out.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${PALETTE[j % PALETTE.length]}"/>`, `<text x="${x + 17}" y="${y}">${esc(s)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
