/** Soak (--soak minutes, instead of the other measures): the hub alone at a moderate rate, its RSS every 10 s. */
import { startBroker } from '../broker.ts';
import { Publisher, nowMs } from '../mqtt-publisher.ts';
import { rssMiB } from '../proc-stats.ts';
import { f1, int, say, sleep, type Ctx } from './common.ts';
import { countHubRows, ingestCounters, startPrimedIngest } from './hub.ts';
import { Messages } from './messages.ts';
import { checkRollups, sayRollups, type RollupCheck } from './rollups.ts';

/** Soak publish rate when --rate is not given: well below what the hub sustains on the 2-CPU bench machine. */
export const SOAK_RATE = 15_000;

export interface SoakResult {
  minutes: number;
  rate: number;
  sent: number;
  committedPerSecond: number;
  lost: number;
  /** Rollup buckets and latest values that differ from the raw rows (rollups.ts). */
  rollups: RollupCheck;
  rssMiB: { atSeconds: number; rss: number; committed: number }[];
  first: number;
  last: number;
  max: number;
}

export async function soak(ctx: Ctx, minutes: number, rate: number, base: number): Promise<SoakResult> {
  const broker = await startBroker('mosquitto-soak');
  const ingest = await startPrimedIngest(ctx, 'ingest-soak', broker);
  const msgs = new Messages(base);
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });
  const c0 = (await ingestCounters(ingest.ops))!;
  const seconds = minutes * 60;
  say(`- soak: hub alone, ${int(rate)} msgs/s for ${minutes} min; ingest RSS every 10 s`);
  const t0 = nowMs();
  const samples: SoakResult['rssMiB'] = [];
  const sample = async () => {
    const c = await ingestCounters(ingest.ops);
    const s = {
      atSeconds: Math.round((nowMs() - t0) / 1000),
      rss: rssMiB(ingest.pid),
      committed: c ? c.stored - c0.stored : NaN,
    };
    samples.push(s);
    say(`  ${String(s.atSeconds).padStart(5)} s  RSS ${f1(s.rss)} MiB  committed ${int(s.committed)}`);
  };
  await sample();
  const timer = setInterval(() => void sample(), 10_000);
  const published = await pub.publishPaced(rate, seconds);
  clearInterval(timer);
  await pub.close();
  const until = Date.now() + 120_000;
  while (((await ingestCounters(ingest.ops))?.stored ?? 0) - c0.stored < published.sent && Date.now() < until)
    await sleep(100);
  await sample();
  const counted = await countHubRows(ctx, base, published.sent);
  await ingest.child.stop();
  await broker.stop();
  const rollups = await checkRollups(ctx);
  sayRollups(rollups);
  const rss = samples.map((s) => s.rss).filter(Number.isFinite);
  return {
    minutes,
    rate,
    sent: published.sent,
    committedPerSecond: counted.distinct / published.seconds,
    lost: published.sent - counted.distinct,
    rollups,
    rssMiB: samples,
    first: rss[0]!,
    last: rss[rss.length - 1]!,
    max: Math.max(...rss),
  };
}
