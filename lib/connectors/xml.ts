import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { RecordProblem } from './values.ts';

/**
 * XML as the connectors read it: a tree of elements named by (namespace URI, local name), so a document means
 * the same whatever prefixes its writer chose (`<b2:ID>`, `<ID xmlns="...">`, a prefix redeclared lower down).
 * fast-xml-parser does not resolve namespaces itself; this walks its ordered output and does.
 */
export interface XmlElement {
  ns: string;
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (trimmed), children's text not included. */
  text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // Values stay text: "0010" is a segment id, not the number 10.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  // No DOCTYPE entity expansion from a remote party (billion laughs); the five XML entities still decode.
  processEntities: true,
  htmlEntities: false,
});

type Ordered = Record<string, unknown> & { ':@'?: Record<string, string> };

/** Parses a document; malformed XML is a RecordProblem naming where it broke. */
export function parseXml(xml: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true)
    throw new RecordProblem(`the body is not well-formed XML (${valid.err.msg}, line ${valid.err.line})`);
  const nodes = parser.parse(xml) as Ordered[];
  const roots = build(nodes, { xml: 'http://www.w3.org/XML/1998/namespace' });
  if (roots.length !== 1) throw new RecordProblem(`the body has ${roots.length} root elements`);
  return roots[0]!;
}

function build(nodes: Ordered[], scope: Record<string, string>): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of nodes) {
    const tag = Object.keys(node).find((k) => k !== ':@');
    if (!tag || tag === '#text' || tag.startsWith('?')) continue;
    const attrs = node[':@'] ?? {};
    const inner: Record<string, string> = { ...scope };
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'xmlns') inner[''] = v;
      else if (k.startsWith('xmlns:')) inner[k.slice(6)] = v;
    }
    const colon = tag.indexOf(':');
    const prefix = colon < 0 ? '' : tag.slice(0, colon);
    const content = (node[tag] as Ordered[]) ?? [];
    out.push({
      ns: inner[prefix] ?? '',
      name: colon < 0 ? tag : tag.slice(colon + 1),
      attrs: Object.fromEntries(Object.entries(attrs).filter(([k]) => k !== 'xmlns' && !k.startsWith('xmlns:'))),
      children: build(content, inner),
      text: content
        .map((c) => (typeof c['#text'] === 'string' || typeof c['#text'] === 'number' ? String(c['#text']) : ''))
        .join('')
        .trim(),
    });
  }
  return out;
}

/** Children of `el` in namespace `ns` named `name`. */
export const childrenOf = (el: XmlElement | undefined, ns: string, name: string): XmlElement[] =>
  el ? el.children.filter((c) => c.ns === ns && c.name === name) : [];

export const childOf = (el: XmlElement | undefined, ns: string, name: string): XmlElement | undefined =>
  el?.children.find((c) => c.ns === ns && c.name === name);

/** The text at a path of child names, or undefined when an element on the way is missing or empty. */
export function textAt(el: XmlElement | undefined, ns: string, ...path: string[]): string | undefined {
  let cur = el;
  for (const p of path) cur = childOf(cur, ns, p);
  return cur?.text ? cur.text : undefined;
}

/** Every descendant of `el` (depth first, `el` included) in `ns` named `name`. */
export function descendants(el: XmlElement, ns: string, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (e.ns === ns && e.name === name) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}

/** Text escaped for element content and attribute values. */
export function esc(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}
