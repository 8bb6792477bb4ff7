import type { Request, RequestHandler, Response } from 'express';
import { graphqlUploadExpress, Upload } from 'graphql-upload-ts';
import { multipartErrors } from '../lib/http.ts';

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
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data'))
      return refuse(res, 415, 'BAD_USER_INPUT', 'A file upload is multipart/form-data');
    // Apollo's CSRF rule for multipart: a header a browser form cannot send (apollo-server#6433).
    if (!req.headers['apollo-require-preflight'] && !req.headers['x-apollo-operation-name'])
      return refuse(res, 400, 'BAD_USER_INPUT', 'A file upload needs the header Apollo-Require-Preflight: true');
    authenticate(req).then(
      () => next(),
      (e: Error) => refuse(res, 401, 'UNAUTHENTICATED', e.message),
    );
  };
  return [guard, (req, res, next) => (isMultipart(req) ? parse(req, res, next) : next()), multipartErrors as never];
}

/** The variables with every upload in them as null, where the multipart `map` puts the files back. */
export function withoutUploads(v: unknown): unknown {
  if (v instanceof Upload) return null;
  if (Array.isArray(v)) return v.map(withoutUploads);
  if (v && typeof v === 'object' && !(v instanceof Date))
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutUploads(x)]));
  return v;
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
