import { writeAuditSafe } from '../audit.repo.ts';
import { requireRole, type Role } from '../auth/viewer.ts';
import { errorCodeOf } from '../errors.ts';
import type { SubgraphContext } from './context.ts';

interface GuardSpec<A, R> {
  /** The least role allowed. */
  role: Role;
  /** Write an audit entry (every mutation does). */
  audit?: boolean;
  /** What the entry names as the object changed. */
  target?: (args: A, result?: R) => string | null | undefined;
}

/**
 * Wraps a resolver with its role check and, for mutations, the audit entry (who, what, when, outcome),
 * so resolvers stay one line and no mutation can forget either. Refused and failed calls are audited too.
 */
export function guard<A, R, C extends SubgraphContext<any>>(
  spec: GuardSpec<A, R>,
  fn: (args: A, ctx: C) => Promise<R>,
) {
  return async (_parent: unknown, args: A, ctx: C, info: { fieldName: string }): Promise<R> => {
    const audit = async (outcome: 'SUCCESS' | 'FAILURE', result?: R, err?: unknown) => {
      if (!spec.audit) return;
      await writeAuditSafe(
        ctx.db,
        {
          actor: ctx.viewer.sub,
          roles: [ctx.viewer.role],
          service: ctx.service,
          operation: info.fieldName,
          target: spec.target?.(args, result) ?? null,
          outcome,
          errorCode: err ? errorCodeOf(err) : null,
          details: { args: args as Record<string, unknown> },
          requestId: ctx.requestId,
        },
        { requestId: ctx.requestId, operation: info.fieldName },
      );
    };
    try {
      requireRole(ctx.viewer, spec.role);
      const result = await fn(args, ctx);
      await audit('SUCCESS', result);
      return result;
    } catch (err) {
      await audit('FAILURE', undefined, err);
      throw err;
    }
  };
}
