import type { Destination } from '../config/logger.ts';

/**
 * Gathers log lines and hands them to the destination as one string: once
 * per event-loop turn without a buffer, or once `buffer` bytes have gathered
 * or `flushMs` has passed since the first waiting line (nginx's
 * `access_log … buffer= flush=`).
 *
 * Why not sonic-boom's own minLength: it appends each line to a growing string
 * and measures that string's UTF-8 length on every write, which flattens it
 * each time; per line that cost ~4 µs with its default 16k writes and ~9 µs
 * with a 64k buffer. Joining an array once per batch costs tens of ns a line.
 * `buffer` counts UTF-16 units, the bytes of an ASCII line: a threshold, not a cap.
 */
export class LineBatch {
  private lines: string[] = [];
  private size = 0;
  private turn: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly pass = (): void => this.drain();
  private readonly dest: Destination;
  private readonly buffer: number;
  private readonly flushMs: number;

  constructor(dest: Destination, buffer: number, flushMs: number) {
    this.dest = dest;
    this.buffer = buffer;
    this.flushMs = flushMs;
  }

  push(line: string): void {
    this.lines.push(line);
    this.size += line.length;
    if (this.buffer === 0) {
      this.turn ??= setImmediate(this.pass);
    } else if (this.size >= this.buffer) {
      this.drain();
    } else if (this.timer === null) {
      // Unref'd: a waiting line never keeps a stopping worker alive; stop() drains it.
      this.timer = setTimeout(this.pass, this.flushMs).unref();
    }
  }

  /** Hands every waiting line to the destination now. */
  drain(): void {
    if (this.turn !== null) {
      clearImmediate(this.turn);
      this.turn = null;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.size = 0;
    this.dest.write(text);
  }
}
