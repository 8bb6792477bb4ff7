/** Polls `read` until `ok` holds (no timing assertions: a deadline only so a broken run fails instead of hanging). */
export async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean = Boolean,
  ms = 15_000,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
