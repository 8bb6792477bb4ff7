import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { GraphQLError } from 'graphql';
import { HubError } from '../lib/errors.ts';
import { INTERNAL_HEADER } from '../lib/subgraph/server.ts';
import type { GatewayContext } from './context.ts';
import { uploadsIn, withoutUploads } from './uploads.ts';

type FetcherResponse = Parameters<RemoteGraphQLDataSource['errorFromResponse']>[0];

/** Forwards each subgraph fetch with the gateway's signed viewer and the request id. */
export class HubDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    if (!('internalToken' in context) || !context.internalToken) return;
    request.http?.headers.set(INTERNAL_HEADER, context.internalToken);
    request.http?.headers.set('x-request-id', context.requestId);
  }

  /**
   * A fetch whose variables hold uploads goes to the subgraph as a GraphQL multipart request, the files streamed
   * from where graphql-upload-ts put them (RemoteGraphQLDataSource sends JSON only: federation.md §5). Other
   * fetches go the usual way.
   */
  override async process(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<GatewayGraphQLResponse> {
    const uploads = uploadsIn(options.request.variables);
    if (!uploads.length) return super.process(options);
    const files = await Promise.all(
      uploads.map((u) =>
        u.upload.promise.catch((e: Error) => {
          throw new HubError('BAD_USER_INPUT', `the upload was refused: ${e.message}`);
        }),
      ),
    );
    const { request, context } = options;
    const variables = withoutUploads(request.variables ?? {});
    const operations = JSON.stringify({ query: request.query, operationName: request.operationName, variables });
    const map = Object.fromEntries(uploads.map((u, i) => [String(i), [u.path]]));
    const boundary = `----hub${randomUUID()}`;
    const part = (name: string, extra = '') =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n`;
    // A file over the size limit fails while it streams (graphql-upload-ts stops writing it at the limit).
    let streamError: Error | undefined;
    async function* body() {
      yield `${part('operations')}Content-Type: application/json\r\n\r\n${operations}\r\n`;
      yield `${part('map')}Content-Type: application/json\r\n\r\n${JSON.stringify(map)}\r\n`;
      for (const [i, f] of files.entries()) {
        const name = f.filename.replace(/["\r\n]/g, '_');
        const type = f.mimetype || 'application/octet-stream';
        yield `${part(String(i), `; filename="${name}"`)}Content-Type: ${type}\r\n\r\n`;
        try {
          yield* f.createReadStream();
        } catch (e) {
          streamError = e as Error;
          throw e;
        }
        yield '\r\n';
      }
      yield `--${boundary}--\r\n`;
    }
    const headers: Record<string, string> = {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'apollo-require-preflight': 'true',
    };
    if ('internalToken' in context && context.internalToken) {
      headers[INTERNAL_HEADER] = context.internalToken;
      headers['x-request-id'] = context.requestId;
    }
    let text: string;
    let status: number;
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers,
        body: Readable.toWeb(Readable.from(body())) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      status = res.status;
      text = await res.text();
    } catch (e) {
      if (streamError) throw new HubError('BAD_USER_INPUT', `the upload was refused: ${streamError.message}`);
      throw e;
    }
    try {
      return JSON.parse(text) as GatewayGraphQLResponse;
    } catch {
      throw new HubError('UPSTREAM_BAD_RESPONSE', `the subgraph answered the upload with HTTP ${status}`);
    }
  }

  /**
   * The gateway cannot check custom scalar values (it has no DateTime parser), so a bad `DateTime` literal or
   * variable is refused by the subgraph with HTTP 400. That is the client's input, not a gateway failure:
   * pass the subgraph's message on as BAD_USER_INPUT instead of a masked "400: Bad Request".
   */
  override async errorFromResponse(response: FetcherResponse): Promise<GraphQLError> {
    const error = await super.errorFromResponse(response);
    const body = (error.extensions.response as { body?: { errors?: { message?: string }[] } } | undefined)?.body;
    const first = typeof body === 'object' ? body?.errors?.[0] : undefined;
    if (response.status === 400 && first?.message) {
      return new GraphQLError(first.message, { extensions: { code: 'BAD_USER_INPUT' } });
    }
    return error;
  }
}
