// Renders grouped bar charts as standalone SVG (no dependencies, deterministic output), so the
// benchmark script can draw mailfleet next to Postfix and the README can embed the result.

export interface Series {
  name: string;
  color: string;
  values: number[];
}

export interface BarChart {
  title: string;
  unit: string;
  categories: string[];
  series: Series[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function fmt(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** One chart panel at (x, y) of the given size, as SVG elements. */
function panel(chart: BarChart, x: number, y: number, width: number, height: number): string {
  const top = y + 40;
  const bottom = y + height - 50;
  const left = x + 60;
  const right = x + width - 10;
  const max = niceMax(Math.max(0, ...chart.series.flatMap((s) => s.values)));
  const groupWidth = (right - left) / Math.max(1, chart.categories.length);
  const barWidth = (groupWidth * 0.7) / Math.max(1, chart.series.length);
  const out: string[] = [
    `<text x="${x + width / 2}" y="${y + 20}" text-anchor="middle" font-size="15" font-weight="bold">${esc(chart.title)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const ty = bottom - ((bottom - top) * i) / 4;
    out.push(`<line x1="${left}" y1="${ty}" x2="${right}" y2="${ty}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${ty + 4}" text-anchor="end" font-size="11">${fmt(value)}</text>`);
  }
  out.push(
    `<text x="${x + 14}" y="${(top + bottom) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 ${x + 14} ${(top + bottom) / 2})">${esc(chart.unit)}</text>`,
  );
  chart.categories.forEach((category, c) => {
    const gx = left + c * groupWidth + groupWidth * 0.15;
    chart.series.forEach((series, s) => {
      const value = series.values[c] ?? 0;
      const h = ((bottom - top) * value) / max;
      const bx = gx + s * barWidth;
      out.push(
        `<rect x="${bx.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${series.color}"/>`,
      );
      out.push(
        `<text x="${(bx + barWidth / 2 - 1).toFixed(1)}" y="${(bottom - h - 4).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(value)}</text>`,
      );
    });
    out.push(
      `<text x="${(left + c * groupWidth + groupWidth / 2).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" font-size="11">${esc(category)}</text>`,
    );
  });
  out.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333"/>`);
  return out.join('\n');
}

/** Several panels side by side with one shared legend. */
export function renderCharts(charts: BarChart[], panelWidth = 460, panelHeight = 300): string {
  const width = panelWidth * charts.length;
  const height = panelHeight + 30;
  const series = charts[0]?.series ?? [];
  const legend = series
    .map((s, i) => {
      const lx = 20 + i * 160;
      return `<rect x="${lx}" y="${panelHeight + 8}" width="14" height="14" fill="${s.color}"/><text x="${lx + 20}" y="${panelHeight + 20}" font-size="12">${esc(s.name)}</text>`;
    })
    .join('\n');
  const body = charts.map((chart, i) => panel(chart, i * panelWidth, 0, panelWidth, panelHeight)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n${legend}\n</svg>\n`;
}
