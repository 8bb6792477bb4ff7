import { z } from 'zod';
import { HUB_ID } from '../ids.ts';
import { ConnectionSchema } from './connection.ts';
import { loadYamlConfig } from './load.ts';

const name = z.string().regex(HUB_ID, 'is not a valid name (letters, digits, _ . : -)');

/** PI Web API (protocols.md §1): baseUrl ends in /piwebapi. */
const PiSchema = z
  .object({
    name,
    type: z.literal('pi-web-api'),
    connection: ConnectionSchema,
    /** Values asked per recorded page; lowered at run time when the server's MaxReturnedItemsPerCall is smaller. */
    maxCount: z.number().int().min(10).max(1_000_000).default(10_000),
  })
  .strict();

/** AVEVA (Wonderware) Historian REST v2 (protocols.md §2): baseUrl is the server, e.g. http://hist:32569. */
const AvevaSchema = z
  .object({
    name,
    type: z.literal('aveva-rest'),
    connection: ConnectionSchema,
    /** Where the API lives on the server (on premises /Historian/v2; the Insight cloud uses /apis/historian/v2). */
    basePath: z.string().startsWith('/').default('/Historian/v2'),
    /** Rows asked per page ($top); the server may page smaller, and its next links are followed. */
    pageSize: z.number().int().min(10).max(1_000_000).default(5000),
  })
  .strict();

export const HistorianSchema = z.discriminatedUnion('type', [PiSchema, AvevaSchema]);
export type HistorianConfig = z.output<typeof HistorianSchema>;

/**
 * A historian tag feeding a machine's signal, as the historian subgraph's tag mappings hold them: the value stored
 * is raw × scale + offset, in `unit`.
 */
const TagMappingSchema = z
  .object({
    historian: name,
    /** PI: \\server\tag; AVEVA: the FQN (datasource.tagname). */
    tag: z.string().min(1),
    machineId: z.string().regex(HUB_ID, 'is not a valid machine id'),
    /** What the value is of the machine: temperature, speed, count... */
    signalType: z.string().min(1),
    unit: z.string().min(1),
    scale: z
      .number()
      .refine((n) => n !== 0, 'must not be 0')
      .default(1),
    offset: z.number().default(0),
  })
  .strict();
export type TagMappingConfig = z.output<typeof TagMappingSchema>;

/** How backfill jobs run (on the job runner, in the historian subgraph's process). */
const BackfillSchema = z
  .object({
    /** A running job's worker renews its claim this often ×3; a job whose worker died is taken over after it. */
    leaseSeconds: z.number().int().min(2).max(3600).default(30),
    /** Failed page reads of one tag (timeouts, 5xx inside a batch) before the tag fails; the job goes on. */
    maxTagAttempts: z.number().int().min(1).max(20).default(3),
    /** How often progress (counts, positions, watermarks) is written while a job runs. */
    checkpointMs: z.number().int().min(50).max(60_000).default(500),
  })
  .strict();

/**
 * The frontfill: every mapped tag kept current from its high watermark to now, on the job runner (one round at a
 * time across every instance). A tag never fetched starts `initialLookbackMinutes` back.
 */
const FrontfillSchema = z
  .object({
    enabled: z.boolean().default(true),
    intervalSeconds: z.number().min(1).max(86_400).default(30),
    /** Values younger than this are left for the next round (a historian's interfaces buffer: late arrivals). */
    lagSeconds: z.number().min(0).max(3600).default(5),
    initialLookbackMinutes: z.number().min(0).max(525_600).default(60),
  })
  .strict();

/** The historian system (TagMapping.historianSystem) of each connector type. */
export const HISTORIAN_SYSTEMS = { 'pi-web-api': 'PI', 'aveva-rest': 'WONDERWARE' } as const;

export const HistorianFileSchema = z
  .object({
    historians: z.array(HistorianSchema).default([]),
    tagMappings: z.array(TagMappingSchema).default([]),
    backfill: BackfillSchema.default(BackfillSchema.parse({})),
    frontfill: FrontfillSchema.default(FrontfillSchema.parse({})),
  })
  .strict()
  .superRefine((f, ctx) => {
    const names = new Set<string>();
    f.historians.forEach((h, i) => {
      if (names.has(h.name))
        ctx.addIssue({ code: 'custom', path: ['historians', i, 'name'], message: 'is used twice' });
      names.add(h.name);
    });
    const tags = new Set<string>();
    f.tagMappings.forEach((m, i) => {
      if (!names.has(m.historian)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tagMappings', i, 'historian'],
          message: `"${m.historian}" is not defined`,
        });
      }
      const key = `${m.historian}\u0000${m.tag}`;
      if (tags.has(key)) ctx.addIssue({ code: 'custom', path: ['tagMappings', i, 'tag'], message: 'is mapped twice' });
      tags.add(key);
    });
  });
export type HistorianFile = z.output<typeof HistorianFileSchema>;

/** The secrets of every historian's connection: `${VAR}` references only, as in mes.yml. */
const SECRETS = [
  { path: ['historians', '*', 'connection', 'auth', 'password'], example: 'PI_PASSWORD' },
  { path: ['historians', '*', 'connection', 'auth', 'clientSecret'], example: 'PI_CLIENT_SECRET' },
  { path: ['historians', '*', 'connection', 'auth', 'key'], example: 'HISTORIAN_API_KEY' },
];

/** Loads `historian.yml` from the config directory; no file means no historians. */
export function loadHistorianConfig(dir: string | undefined, env: NodeJS.ProcessEnv): HistorianFile {
  return loadYamlConfig(dir, 'historian.yml', HistorianFileSchema, env, SECRETS);
}
