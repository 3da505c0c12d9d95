/**
 * The bar chart of the ratios to HAProxy, as a hand-written SVG: one group per scenario, one bar
 * per contender, a dashed line at 1 (HAProxy) and a tick at each target. No dependency, and the
 * file diffs as text.
 */

/** One group of bars. */
export interface ChartGroup {
  label: string;
  bars: { name: string; ratio: number | null; target: number | null }[];
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948'];
const WIDTH = 960;
const HEIGHT = 420;
const MARGIN = { top: 50, right: 20, bottom: 70, left: 50 };

/** Renders the chart; `title` goes on top. */
export function renderChart(title: string, groups: ChartGroup[]): string {
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length] ?? '#888';
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.ratio ?? 0, b.target ?? 0]));
  // A ceiling on a round number, at least 1.5 so the baseline never sits at the top edge.
  const top = Math.max(1.5, Math.ceil(Math.max(...values, 0) * 1.1 * 2) / 2);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (v: number) => MARGIN.top + plotH - (Math.min(v, top) / top) * plotH;
  const groupW = plotW / Math.max(groups.length, 1);
  const barW = Math.min(36, (groupW * 0.8) / Math.max(names.length, 1));

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
      `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`);
  out.push(
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  // Axis with a gridline every 0.5.
  for (let v = 0; v <= top + 1e-9; v += 0.5) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`,
    );
    out.push(
      `<text x="${MARGIN.left - 6}" y="${yy}" dy="4" text-anchor="end">${v.toFixed(1)}</text>`,
    );
  }
  groups.forEach((g, gi) => {
    const x0 = MARGIN.left + gi * groupW + (groupW - barW * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const x = x0 + bi * barW;
      if (b.ratio === null) {
        out.push(
          `<text x="${(x + barW / 2).toFixed(1)}" y="${y(0) - 4}" text-anchor="middle" font-size="10" fill="#999">n/a</text>`,
        );
      } else {
        const yy = y(b.ratio);
        out.push(
          `<rect x="${(x + 2).toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 4).toFixed(1)}" ` +
            `height="${(y(0) - yy).toFixed(1)}" fill="${color(b.name)}"><title>${esc(b.name)}: ${b.ratio.toFixed(2)}</title></rect>`,
        );
        const label = b.ratio > top ? `${b.ratio.toFixed(1)}↑` : b.ratio.toFixed(2);
        out.push(
          `<text x="${(x + barW / 2).toFixed(1)}" y="${(yy - 4).toFixed(1)}" text-anchor="middle" font-size="10">${label}</text>`,
        );
      }
      if (b.target !== null) {
        const ty = y(b.target).toFixed(1);
        out.push(
          `<line x1="${x.toFixed(1)}" x2="${(x + barW).toFixed(1)}" y1="${ty}" y2="${ty}" stroke="black" stroke-width="2.5"><title>target ${b.target}</title></line>`,
        );
      }
    });
    out.push(
      `<text x="${(MARGIN.left + gi * groupW + groupW / 2).toFixed(1)}" y="${y(0) + 18}" text-anchor="middle">${esc(g.label)}</text>`,
    );
  });
  const base = y(1).toFixed(1);
  out.push(
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${base}" y2="${base}" stroke="#333" stroke-dasharray="6 4"/>`,
  );
  // Legend, one row under the plot; the black tick explained last.
  let lx = MARGIN.left;
  const ly = HEIGHT - 22;
  for (const name of names) {
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${color(name)}"/>`,
      `<text x="${lx + 16}" y="${ly}">${esc(name)}</text>`,
    );
    lx += 24 + name.length * 7;
  }
  out.push(
    `<line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="black" stroke-width="2.5"/>`,
    `<text x="${lx + 20}" y="${ly}">target</text>`,
    `<line x1="${lx + 80}" x2="${lx + 104}" y1="${ly - 4}" y2="${ly - 4}" stroke="#333" stroke-dasharray="6 4"/>`,
    `<text x="${lx + 108}" y="${ly}">HAProxy = 1</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function esc(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
