/**
 * A fixed-capacity FIFO. When full, `push` refuses the newest item: entries
 * already queued keep their order, and a batch being taken is never
 * overwritten. Memory is the array allocated up front, whatever happens
 * downstream.
 */
export class Ring<T> {
  readonly capacity: number;
  private readonly items: (T | undefined)[];
  private head = 0;
  size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): boolean {
    if (this.size === this.capacity) return false;
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
    return true;
  }

  /** Removes and returns up to `n` of the oldest items. */
  take(n: number): T[] {
    const out: T[] = [];
    while (out.length < n && this.size > 0) {
      out.push(this.items[this.head]!);
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
    }
    return out;
  }
}
