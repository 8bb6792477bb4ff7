import { z } from 'zod';

/**
 * How to read readings out of one JSON document (an MQTT payload or an HTTP response), as configured in iot.yml.
 * One document may carry several values (temperature and humidity): each value names its sensor.
 *
 *   sensorId: { path: sensor_id }            # or { topicSegment: 1 } (MQTT) or { value: TEMP_ZONE_A }
 *   values:
 *     - { path: temperature, sensorId: "{base}-TEMP" }   # "{base}" is the sensorId above
 *     - { path: humidity,    sensorId: "{base}-HUM" }
 *   timestamp: { path: timestamp, format: iso }          # iso | epoch_ms | epoch_s; omitted: time received
 *   quality: { path: quality }                           # 0..100; omitted: the hub's full quality
 *   unit: { path: unit }                                 # optional: must equal the sensor's unit
 */
const pathSchema = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9_$-]+(\[\d+\])*(\.[A-Za-z0-9_$-]+(\[\d+\])*)*$/, 'must be a dot path like a.b[0].c');

export const JsonMappingSchema = z
  .object({
    sensorId: z
      .union([
        z.object({ path: pathSchema }).strict(),
        z.object({ topicSegment: z.number().int().min(0) }).strict(),
        z.object({ value: z.string().min(1) }).strict(),
      ])
      .optional(),
    values: z
      .array(z.object({ path: pathSchema, sensorId: z.string().min(1).optional() }).strict())
      .min(1, 'at least one value path is needed'),
    timestamp: z
      .object({ path: pathSchema, format: z.enum(['iso', 'epoch_ms', 'epoch_s']).default('iso') })
      .strict()
      .optional(),
    quality: z.object({ path: pathSchema }).strict().optional(),
    /** Where the payload states its unit; a unit other than the sensor's is refused (no silent conversion). */
    unit: z.object({ path: pathSchema }).strict().optional(),
  })
  .strict()
  .refine((m) => m.sensorId || m.values.every((v) => v.sensorId && !v.sensorId.includes('{base}')), {
    message: 'give sensorId, or a literal sensorId on every value',
  });
export type JsonMapping = z.output<typeof JsonMappingSchema>;
