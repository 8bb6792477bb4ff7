/**
 * What the hub accepts as an id of its own (site, line, machine, sensor, product...): a letter or digit, then up
 * to 63 letters, digits or _ . : -. The same rule as the id checks in the database, so an id refused here would
 * also be refused there, and one accepted here needs no escaping in topics, URLs or logs.
 */
export const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
