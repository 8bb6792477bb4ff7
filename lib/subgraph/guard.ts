import { writeAuditSafe } from '../audit.repo.ts';
import { requireRole, type Role } from '../auth/viewer.ts';
import { errorCodeOf } from '../errors.ts';
import type { GraphQLResolveInfo } from 'graphql';
import type { SubgraphContext } from './context.ts';

interface GuardSpec<A, R> {
  /** The least role allowed. */
  role: Role;
  /** Write an audit entry (every mutation does). */
  audit?: boolean;
  /** What the entry names as the object changed. */
  target?: (args: A, result?: Awaited<R>) => string | null | undefined;
}

/**
 * Wraps a resolver with its role check and, for mutations, the audit entry (who, what, when, outcome),
 * so resolvers stay one line and no mutation can forget either. Refused and failed calls are audited too.
 */
export function guard<A, R, C extends SubgraphContext, P = unknown>(
  spec: GuardSpec<A, R>,
  fn: (args: A, ctx: C) => Promise<R>,
): (parent: P, args: A, ctx: C, info: GraphQLResolveInfo) => Promise<R> {
  // The field's generated resolver type (its arguments, result and context) is what A, R and C are inferred
  // from: `createSensor: guard({...}, (a, ctx) => ...)` needs no annotations and keeps the argument types.
  return async (_parent, args, ctx, info) => {
    const audit = async (outcome: 'SUCCESS' | 'FAILURE', result?: Awaited<R>, err?: unknown) => {
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
