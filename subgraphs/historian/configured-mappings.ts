import {
  HISTORIAN_SYSTEMS as SYSTEMS,
  type HistorianConfig,
  type TagMappingConfig,
} from '../../lib/config/historian.ts';
import type { HistorianConnector } from '../../lib/connectors/historian/types.ts';
import type { Db } from '../../lib/db/index.ts';
import { log } from '../../lib/log.ts';
import * as repo from './historian.repo.ts';

/**
 * historian.yml's tag mappings made real at start: a mapping it names and the database lacks is looked up on its
 * historian and created (as createTagMapping does); one that exists takes the file's signal, unit, scale and offset
 * (the file is the engineer's word for these). A tag its historian does not know, or a machine that does not exist
 * (yet: the MES sync makes machines), is logged and skipped, as when its historian does not answer; resolves to how
 * many are still to make, which the caller tries again later. Another instance making one at the same time is fine.
 */
export async function applyConfiguredMappings(
  db: Db,
  historians: ReadonlyMap<string, { config: HistorianConfig; connector: HistorianConnector }>,
  mappings: readonly TagMappingConfig[],
): Promise<number> {
  let pending = 0;
  const machines = await repo.existingMachines(db, [...new Set(mappings.map((m) => m.machineId))]);
  for (const [name, h] of historians) {
    const mine = mappings.filter((m) => m.historian === name);
    if (!mine.length) continue;
    const stored = new Map(
      (
        await repo.mappingsByTags(
          db,
          name,
          mine.map((m) => m.tag),
        )
      ).map((m) => [m.tag, m]),
    );
    for (const m of mine.filter((x) => stored.has(x.tag))) {
      const cur = stored.get(m.tag)!;
      if (
        cur.signalType !== m.signalType ||
        cur.unit !== m.unit ||
        cur.scaleFactor !== m.scale ||
        cur.valueOffset !== m.offset
      )
        await repo.updateTagMapping(db, cur.id, {
          signalType: m.signalType,
          unit: m.unit,
          scaleFactor: m.scale,
          offset: m.offset,
        });
    }
    const fresh = mine.filter((m) => !stored.has(m.tag));
    const unknownMachine = fresh.filter((m) => !machines.has(m.machineId));
    for (const m of unknownMachine)
      log.warn(
        { historian: name, tag: m.tag, machineId: m.machineId },
        'historian.yml maps a tag to an unknown machine',
      );
    const toMake = fresh.filter((m) => machines.has(m.machineId));
    pending += fresh.length;
    if (!toMake.length) continue;
    let looked: Awaited<ReturnType<HistorianConnector['resolveTags']>>;
    try {
      looked = await h.connector.resolveTags(toMake.map((m) => m.tag));
    } catch (err) {
      log.warn(
        { historian: name, err: (err as Error).message },
        'historian.yml mappings not made: the historian did not answer',
      );
      continue;
    }
    const refs = new Map(looked.resolved.map((t) => [t.tag, t]));
    for (const f of looked.failed)
      log.warn({ historian: name, tag: f.tag, reason: f.reason }, 'historian.yml maps an unknown tag');
    for (const m of toMake.filter((x) => refs.has(x.tag))) {
      const made = await repo
        .insertTagMapping(db, {
          historianSystem: SYSTEMS[h.config.type],
          historian: name,
          ref: refs.get(m.tag)!.ref,
          tagType: refs.get(m.tag)!.type,
          tag: m.tag,
          machineId: m.machineId,
          signalType: m.signalType,
          unit: m.unit,
          scaleFactor: m.scale,
          offset: m.offset,
        })
        .then(
          () => true,
          (err: { code?: string }) => {
            if (err.code === '23505') return true; // another instance made it
            throw err;
          },
        );
      if (made) pending--;
    }
  }
  return pending;
}
