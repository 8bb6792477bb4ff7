/**
 * A bounded push → pull async iterator: the producer never waits, the consumer awaits the next value. When
 * more than `max` values wait, the oldest is dropped (and counted): a live view wants the newest data, and an
 * unbounded queue behind a stuck consumer is how a process runs out of memory.
 */
export class PushQueue<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  private head = 0;
  private waiting?: (r: IteratorResult<T>) => void;
  private done = false;

  constructor(
    private readonly max: number,
    private readonly onDrop: () => void,
    private readonly onEnd: () => void,
  ) {}

  push(value: T): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value, done: false });
      return;
    }
    this.values.push(value);
    if (this.values.length - this.head > this.max) {
      this.head++;
      this.onDrop();
    }
    // Compact now and then instead of shift() per value (O(n) each).
    if (this.head > 1024 && this.head * 2 > this.values.length) {
      this.values.splice(0, this.head);
      this.head = 0;
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.values.length) {
      const value = this.values[this.head]!;
      this.values[this.head++] = undefined as T;
      if (this.head === this.values.length) {
        this.values.length = 0;
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.done) {
      this.done = true;
      this.values.length = 0;
      this.head = 0;
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
      this.onEnd();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
