/** What the benchmarks share: reading `--name value` arguments and printing a result table. */

/** The value after `--name` on the command line, or `dflt`. */
export function argValue(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** The number after `--name` on the command line, or `dflt`. */
export function argNumber(name: string, dflt: number): number {
  return Number(argValue(name, String(dflt)));
}

/**
 * Prints `cells` under `head` in aligned columns: the first `leftColumns` columns (names) left-aligned,
 * the rest (figures) right-aligned.
 */
export function printTable(head: string[], cells: string[][], leftColumns = 1): void {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i < leftColumns ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}
