/** A plain-text table with right-aligned numeric columns, for terminal reports. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const numeric = header.map(
    (_, c) =>
      rows.length > 0 &&
      rows.every((r) => typeof r[c] === 'number' || r[c] === '' || /^[-+]?[\d.,]+( ?[a-z%]+)?$/i.test(String(r[c]))),
  );
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((v, c) => (numeric[c] ? v.padStart(widths[c]) : v.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function formatHours(h: number): string {
  const s = h * 3600;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${h.toFixed(2)} h`;
}
