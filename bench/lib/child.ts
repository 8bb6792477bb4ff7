/**
 * The end of every bench child process: print `READY {json}` for the parent (bench/lib/proc.ts startChild),
 * then on SIGTERM/SIGINT run the closers in order, ignoring their failures, and exit 0.
 */
export function readyUntilSignal(
  ready: unknown,
  closers: (() => Promise<unknown> | unknown)[],
  onStop?: () => void,
): void {
  const shutdown = async () => {
    onStop?.();
    for (const close of closers)
      await Promise.resolve()
        .then(close)
        .catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  console.log(`READY ${JSON.stringify(ready)}`);
}
