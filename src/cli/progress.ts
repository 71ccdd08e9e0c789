/**
 * A progress bar on a TTY (redrawn in place on stderr), plain lines otherwise so logs and CI
 * output stay readable: at most one line every `plainEveryMs`.
 */
export class Progress {
  private readonly tty: boolean;
  private lastPlain = 0;
  private readonly start = Date.now();
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 5000,
  ) {
    this.tty = Boolean(stream.isTTY) && !process.env.CI;
  }

  update(done: number, total: number, detail = ''): void {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = frac > 0 && frac < 1 ? elapsed * (1 / frac - 1) : 0;
    const tail =
      `${done}/${total} ${formatDuration(elapsed)}${eta ? ` eta ${formatDuration(eta)}` : ''}` +
      `${detail ? `  ${detail}` : ''}`;
    if (this.tty) {
      const width = 28;
      const fill = Math.round(frac * width);
      const line =
        `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ` +
        `${(frac * 100).toFixed(0).padStart(3)}% ${tail}`;
      const cols = this.stream.columns || 100;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}\x1b[K`);
      this.drawn = true;
    } else if (Date.now() - this.lastPlain >= this.plainEveryMs || done === total) {
      this.lastPlain = Date.now();
      this.stream.write(`${this.label}: ${(frac * 100).toFixed(0)}% ${tail}\n`);
    }
  }

  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
  }
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
