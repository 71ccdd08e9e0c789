import { Worker } from 'node:worker_threads';
import type { DecodeJob, DecodeResult } from './decode-worker.js';

/**
 * A fixed pool of decode workers. Jobs queue here and go to whichever worker is idle; a worker
 * that dies (a native crash in a decoder) fails only its own job and is replaced.
 */
export class DecodePool {
  private idle: Worker[] = [];
  private all = new Set<Worker>();
  private queue: { job: DecodeJob; resolve: (r: DecodeResult) => void }[] = [];
  private running = new Map<Worker, { job: DecodeJob; resolve: (r: DecodeResult) => void }>();
  private closed = false;

  constructor(private readonly size: number) {
    if (!(size >= 1)) throw new Error(`workers must be at least 1, got ${size}`);
  }

  run(job: DecodeJob): Promise<DecodeResult> {
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.pump();
    });
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./decode-worker.js', import.meta.url));
    this.all.add(w);
    w.on('message', (r: DecodeResult) => {
      const task = this.running.get(w);
      this.running.delete(w);
      this.idle.push(w);
      task?.resolve(r);
      this.pump();
    });
    const onDeath = (reason: string) => {
      const task = this.running.get(w);
      this.running.delete(w);
      this.all.delete(w);
      this.idle = this.idle.filter((x) => x !== w);
      task?.resolve({ id: task.job.id, ok: false, reason: `decoder crashed: ${reason}` });
      if (!this.closed) this.pump();
    };
    w.on('error', (e) => onDeath(e.message));
    w.on('exit', (code) => {
      if (this.all.has(w)) onDeath(`worker exited with code ${code}`);
    });
    return w;
  }

  private pump(): void {
    while (this.queue.length && !this.closed) {
      let w = this.idle.pop();
      if (!w) {
        if (this.all.size >= this.size) return;
        w = this.spawn();
      }
      const task = this.queue.shift()!;
      this.running.set(w, task);
      w.postMessage(task.job);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.all];
    this.all.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
