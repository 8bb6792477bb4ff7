/**
 * Where a reading came from, stored as a smallint in telemetry.readings.source to keep that table narrow.
 * Codes are persisted: never renumber, only append.
 */
export const SOURCE_CODES = { MQTT: 1, SPARKPLUG: 2, HTTP: 3, HISTORIAN: 4, IMPORT: 5, DEMO: 6 } as const;

export type SourceName = keyof typeof SOURCE_CODES;
export type SourceCode = (typeof SOURCE_CODES)[SourceName];

const NAMES = new Map<number, SourceName>(
  Object.entries(SOURCE_CODES).map(([name, code]) => [code, name as SourceName]),
);

/** The name of a stored code; an unknown code is corrupt data, not a client error, so it throws. */
export function sourceName(code: number): SourceName {
  const name = NAMES.get(code);
  if (!name) throw new Error(`unknown reading source code ${code}`);
  return name;
}
