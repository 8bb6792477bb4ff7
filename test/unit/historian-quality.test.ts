import { describe, expect, it } from 'vitest';
import { avevaQuality, piQuality } from '../../lib/connectors/historian/quality.ts';

/** The quality table as protocols.md §1 and §2 state it, case by case, on the hub's 0–100 scale. */
describe('historian quality on the hub scale', () => {
  it.each([
    [{ Good: true, Questionable: false, Substituted: false }, 100],
    [{ Good: true, Questionable: false, Substituted: false, Annotated: true }, 100],
    [{ Good: true, Questionable: true, Substituted: false }, 50],
    [{ Good: true, Questionable: false, Substituted: true }, 70],
    [{ Good: true, Questionable: true, Substituted: true }, 50],
    [{ Good: false, Questionable: false, Substituted: false }, 0],
    [{ Good: false, Questionable: true, Substituted: true }, 0],
    [{}, 100],
  ])('PI %o → %i', (flags, q) => {
    expect(piQuality(flags)).toBe(q);
  });

  it.each([
    // OPC quality: good is the whole of 192–219 (216: local override), not 192 alone.
    [192, 100],
    [193, 100],
    [216, 100],
    [219, 100],
    [64, 50],
    [68, 50],
    [91, 50],
    [0, 0],
    [24, 0],
    [35, 0],
    // Outside every documented range: not known to be good.
    [50, 0],
    [150, 0],
    [220, 0],
  ])('AVEVA OpcQuality %i → %i', (opc, q) => {
    expect(avevaQuality({ OpcQuality: opc })).toBe(q);
  });

  it.each([
    [0, 100],
    [1, 0],
    [16, 50],
    [133, 100],
    [7, 0],
  ])('AVEVA Quality %i → %i', (quality, q) => {
    expect(avevaQuality({ Quality: quality })).toBe(q);
  });

  it('AVEVA: the worse of OpcQuality and Quality decides; neither given is good', () => {
    expect(avevaQuality({ OpcQuality: 192, Quality: 16 })).toBe(50);
    expect(avevaQuality({ OpcQuality: 64, Quality: 0 })).toBe(50);
    expect(avevaQuality({ OpcQuality: 192, Quality: 1 })).toBe(0);
    expect(avevaQuality({ OpcQuality: null, Quality: null })).toBe(100);
  });
});
