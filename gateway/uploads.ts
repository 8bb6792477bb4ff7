import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { graphqlUploadExpress, Upload } from 'graphql-upload-ts';

/**
 * GraphQL multipart requests (file uploads) at the gateway (reference/federation.md §5): refused without the
 * CSRF preflight header and without a valid token BEFORE a byte of a file is parsed, then parsed by
 * graphql-upload-ts under the configured size and count limits (files go to temporary files, never whole into
 * memory), its errors answered as JSON GraphQL errors with a code from the one table. The data source
 * (data-source.ts) sends the files on to the subgraph that owns the field.
 */
export interface UploadLimits {
  /** Bytes per file; a larger one is refused while it streams. */
  maxFileSize: number;
  maxFiles: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { maxFileSize: 1024 * 1024 * 1024, maxFiles: 1 };

const isMultipart = (req: Request) => (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/');

const refuse = (res: Response, status: number, code: string, message: string) =>
  res.status(status).json({ errors: [{ message, extensions: { code } }] });

export function uploadMiddleware(
  limits: UploadLimits,
  authenticate: (req: Request) => Promise<unknown>,
): RequestHandler[] {
  const parse = graphqlUploadExpress({ maxFileSize: limits.maxFileSize, maxFiles: limits.maxFiles });
  const guard: RequestHandler = (req, res, next) => {
    if (!isMultipart(req)) return next();
    // Apollo's CSRF rule for multipart: a header a browser form cannot send (apollo-server#6433).
    if (!req.headers['apollo-require-preflight'] && !req.headers['x-apollo-operation-name'])
      return refuse(res, 400, 'BAD_USER_INPUT', 'A file upload needs the header Apollo-Require-Preflight: true');
    authenticate(req).then(
      () => next(),
      (e: Error) => refuse(res, 401, 'UNAUTHENTICATED', e.message),
    );
  };
  const parseErrors = (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { status?: number; expose?: boolean; message?: string };
    if (typeof e?.status !== 'number') return next(err);
    // graphql-upload-ts's http-errors: 413 for a file or count over the limits, 400 for a malformed request.
    const message =
      e.status === 413
        ? `${e.message} (limits: ${limits.maxFiles} file(s) of at most ${limits.maxFileSize} bytes)`
        : (e.message ?? 'malformed multipart request');
    return refuse(res, e.status === 413 ? 413 : 400, 'BAD_USER_INPUT', message);
  };
  return [guard, (req, res, next) => (isMultipart(req) ? parse(req, res, next) : next()), parseErrors as never];
}

/** The uploads among a fetch's variables, with where each is (the multipart `map`). */
export function uploadsIn(variables: Record<string, unknown> | undefined): { path: string; upload: Upload }[] {
  const out: { path: string; upload: Upload }[] = [];
  const walk = (v: unknown, path: string) => {
    if (v instanceof Upload) out.push({ path, upload: v });
    else if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, `${path}.${i}`);
    else if (v && typeof v === 'object' && !(v instanceof Date))
      for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  for (const [k, v] of Object.entries(variables ?? {})) walk(v, `variables.${k}`);
  return out;
}
