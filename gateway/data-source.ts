import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { INTERNAL_HEADER } from '../lib/subgraph/server.ts';
import type { GatewayContext } from './context.ts';

type FetcherResponse = Parameters<RemoteGraphQLDataSource['errorFromResponse']>[0];

/** Forwards each subgraph fetch with the gateway's signed viewer and the request id. */
export class HubDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    if (!('internalToken' in context) || !context.internalToken) return;
    request.http?.headers.set(INTERNAL_HEADER, context.internalToken);
    request.http?.headers.set('x-request-id', context.requestId);
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
