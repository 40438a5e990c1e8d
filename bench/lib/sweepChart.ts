/**
 * The rate sweep as a picture: p99 latency (log scale) against deliveries per second, one
 * line per system, the 50 ms limit drawn across. Plain SVG text, no dependency: the bench
 * writes it next to its JSON, and `bench/sweepChart.ts` draws several runs into one.
 */

export interface SweepPoint {
  /** Messages per second per user of the step. */
  rate: number;
  deliveredPerS: number;
  p99: number;
  lost: number;
}

export interface SweepSeries {
  name: string;
  points: SweepPoint[];
}

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 70, right: 170, top: 40, bottom: 56 };
const COLOURS = ['#7b2cbf', '#2a9d8f', '#e76f51', '#264653', '#e9c46a'];

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round numbers for an axis: 1, 2, 5 × a power of ten, about `count` of them. */
function linearTicks(max: number, count: number): number[] {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) ticks.push(v);
  return ticks;
}

export function sweepChart(series: SweepSeries[], opts: { title: string; limitMs: number }): string {
  const points = series.flatMap((s) => s.points);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const xMax = Math.max(1, ...points.map((p) => p.deliveredPerS)) * 1.05;
  const yMin = 1;
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(opts.limitMs * 2, ...points.map((p) => p.p99))));
  const x = (v: number) => MARGIN.left + (v / xMax) * plotW;
  const y = (v: number) => MARGIN.top + plotH - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`);
  out.push(`<text x="${MARGIN.left}" y="22" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);
  // Axes and grid.
  for (const t of linearTicks(xMax, 6)) {
    out.push(`<line x1="${x(t)}" y1="${MARGIN.top}" x2="${x(t)}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${x(t)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${Math.round(t).toLocaleString('en-US')}</text>`);
  }
  for (let decade = yMin; decade <= yMax; decade *= 10) {
    out.push(`<line x1="${MARGIN.left}" y1="${y(decade)}" x2="${MARGIN.left + plotW}" y2="${y(decade)}" stroke="#eee"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y(decade) + 4}" text-anchor="end">${decade.toLocaleString('en-US')}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle">deliveries per second</text>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log scale)</text>`);
  // The limit a system must hold.
  out.push(`<line x1="${MARGIN.left}" y1="${y(opts.limitMs)}" x2="${MARGIN.left + plotW}" y2="${y(opts.limitMs)}" stroke="#c00" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${MARGIN.left + plotW - 4}" y="${y(opts.limitMs) - 5}" text-anchor="end" fill="#c00">p99 ${opts.limitMs} ms</text>`);
  // One line per system; a hollow point lost messages; each point says its per-user rate.
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const sorted = [...s.points].sort((a, b) => a.rate - b.rate);
    if (sorted.length > 1) out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${sorted.map((p) => `${x(p.deliveredPerS).toFixed(1)},${y(p.p99).toFixed(1)}`).join(' ')}"/>`);
    for (const p of sorted) {
      out.push(`<circle cx="${x(p.deliveredPerS).toFixed(1)}" cy="${y(p.p99).toFixed(1)}" r="4" fill="${p.lost > 0 ? '#fff' : colour}" stroke="${colour}" stroke-width="2"/>`);
      out.push(`<text x="${(x(p.deliveredPerS) + 6).toFixed(1)}" y="${(y(p.p99) - 6).toFixed(1)}" font-size="10" fill="${colour}">${p.rate}</text>`);
    }
    const legendY = MARGIN.top + 14 + i * 20;
    out.push(`<line x1="${WIDTH - MARGIN.right + 14}" y1="${legendY - 4}" x2="${WIDTH - MARGIN.right + 34}" y2="${legendY - 4}" stroke="${colour}" stroke-width="2"/>`);
    out.push(`<text x="${WIDTH - MARGIN.right + 40}" y="${legendY}">${escapeXml(s.name)}</text>`);
  });
  const note = MARGIN.top + 14 + series.length * 20 + 10;
  out.push(`<text x="${WIDTH - MARGIN.right + 14}" y="${note}" font-size="10" fill="#555">labels: msg/s per user</text>`);
  out.push(`<text x="${WIDTH - MARGIN.right + 14}" y="${note + 14}" font-size="10" fill="#555">hollow: messages lost</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
