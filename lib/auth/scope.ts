import type { Db } from '../db/index.ts';
import { loadScopedHierarchy } from './scope.repo.ts';
import { isScoped, type Viewer } from './viewer.ts';

/** Row-level filter for repositories: `undefined` means unrestricted. */
export interface ScopeFilter {
  siteIds?: string[];
  lineIds?: string[];
  machineIds?: string[];
}

/**
 * A request's row scope, resolved at most once per request and only when the token is scoped.
 * A token with `lines` sees those lines (within its `sites`, if any); with only `sites`, every line of those sites.
 */
export class Scope {
  private resolved?: Promise<ScopeFilter>;
  constructor(
    private readonly db: Db,
    readonly viewer: Viewer,
  ) {}

  get unrestricted(): boolean {
    return !isScoped(this.viewer);
  }

  filter(): Promise<ScopeFilter> {
    if (this.unrestricted) return Promise.resolve({});
    this.resolved ??= loadScopedHierarchy(this.db, this.viewer).then((rows) => {
      const lines = new Set<string>();
      const machines = new Set<string>();
      const sites = new Set<string>(this.viewer.lines ? [] : (this.viewer.sites ?? []));
      for (const r of rows) {
        lines.add(r.lineId);
        sites.add(r.siteId);
        if (r.machineId) machines.add(r.machineId);
      }
      return { siteIds: [...sites], lineIds: [...lines], machineIds: [...machines] };
    });
    return this.resolved;
  }

  async allowsLine(lineId: string): Promise<boolean> {
    const f = await this.filter();
    return !f.lineIds || f.lineIds.includes(lineId);
  }

  async allowsMachine(machineId: string): Promise<boolean> {
    const f = await this.filter();
    return !f.machineIds || f.machineIds.includes(machineId);
  }

  async allowsSite(siteId: string): Promise<boolean> {
    const f = await this.filter();
    return !f.siteIds || f.siteIds.includes(siteId);
  }
}
