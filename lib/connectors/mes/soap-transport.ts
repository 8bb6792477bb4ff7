import type { IExOptions, IHeaders, IHttpClient } from 'soap';
import { log } from '../../log.ts';
import type { UpstreamClient } from '../http.ts';
import { childOf, descendants, parseXml, textAt, type XmlElement } from '../xml.ts';

const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const SOAP12 = 'http://www.w3.org/2003/05/soap-envelope';

/**
 * The `soap` package's HTTP client, replaced by the hub's UpstreamClient: the WSDL fetch and every call get the
 * connection's auth (OAuth2 token refreshed once on 401, basic, API key), the per-attempt deadline, the one retry
 * loop and typed errors, exactly like the REST connectors. A call is retried only when the connector says it is
 * idempotent (`{ idempotent: true }` in the call options); a SOAP Fault becomes a typed error with its faultstring.
 */
export class SoapTransport implements IHttpClient {
  constructor(private readonly http: UpstreamClient) {}

  request(
    rurl: string,
    data: unknown,
    callback: (error: unknown, res?: unknown, body?: unknown) => unknown,
    exheaders?: IHeaders,
    exoptions?: IExOptions,
    // biome-ignore lint/suspicious/noExplicitAny: soap types this as an AxiosPromise, but reads only the callback
  ): any {
    const get = data === null || data === undefined;
    const headers: Record<string, string> = { accept: 'text/xml, application/soap+xml, application/xml' };
    for (const [k, v] of Object.entries(exheaders ?? {}))
      if (v !== undefined && v !== null) headers[k.toLowerCase()] = String(v);
    const done = this.http
      .request({
        method: get ? 'GET' : 'POST',
        url: rurl,
        data: get ? undefined : String(data),
        headers,
        idempotent: get || (exoptions as { idempotent?: boolean } | undefined)?.idempotent === true,
        describeError: describeSoapFault,
      })
      .then(
        (res) => callback(null, { status: res.status, headers: res.headers, data: res.text, config: {} }, res.text),
        (err) => callback(err),
      );
    // The soap package answers through the callback; an exception inside it must not become an unhandled rejection.
    return done.catch((e) => log.error({ err: e, system: this.http.system }, 'SOAP response handling failed'));
  }
}

/**
 * A SOAP 1.1 or 1.2 Fault body → its code and string. Client/Sender faults say our request is wrong: not worth
 * retrying (UPSTREAM_BAD_RESPONSE). Server/Receiver faults are the MES's trouble: retried (UPSTREAM_UNAVAILABLE).
 */
export function describeSoapFault(
  body: string,
): { message: string; upstreamCode?: string; retryable?: boolean } | undefined {
  let fault: XmlElement | undefined;
  try {
    const root = parseXml(body);
    fault = descendants(root, SOAP11, 'Fault')[0] ?? descendants(root, SOAP12, 'Fault')[0];
  } catch {
    return undefined; // not XML: the status alone decides
  }
  if (!fault) return undefined;
  // SOAP 1.1's faultcode/faultstring are unqualified, but some servers put them in a default namespace: match by name.
  const plain = (name: string) => fault.children.find((c) => c.name === name)?.text || undefined;
  const code = fault.ns === SOAP11 ? plain('faultcode') : textAt(childOf(fault, SOAP12, 'Code'), SOAP12, 'Value');
  const message = fault.ns === SOAP11 ? plain('faultstring') : textAt(childOf(fault, SOAP12, 'Reason'), SOAP12, 'Text');
  const local = (code ?? '').replace(/^.*:/, '').split('.')[0]!.toLowerCase();
  return {
    message: `SOAP Fault ${code ?? '(no code)'}: ${message ?? '(no faultstring)'}`,
    upstreamCode: code,
    retryable:
      local === 'client' || local === 'sender' ? false : local === 'server' || local === 'receiver' ? true : undefined,
  };
}
