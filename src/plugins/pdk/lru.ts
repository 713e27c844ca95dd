/**
 * A bounded least-recently-used map for worker-local caches (verified
 * credentials, parsed tokens). Map iteration order is insertion order, so
 * re-inserting on a hit keeps the least recently used entry first, and a full
 * cache drops it. Capacity 0 caches nothing.
 *
 * @example const seen = new Lru<string, Consumer>(1024); seen.set(k, c); seen.get(k)
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    if (this.capacity === 0) return;
    this.map.delete(key);
    if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value as K);
    this.map.set(key, value);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}
