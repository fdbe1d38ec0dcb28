/**
 * D-Bus introspection XML → plain data, with the XML comment that precedes each member kept as its `doc`.
 * Used to check src/dbus/api.ts against dbus/org.ovirt.Node.Layers.xml, and a running daemon's Introspect() output
 * against the shipped XML.
 */
import { XMLParser } from 'fast-xml-parser';

export interface XmlArg {
  readonly name: string;
  readonly type: string;
  readonly direction: 'in' | 'out';
}

export interface XmlMethod {
  readonly name: string;
  readonly args: readonly XmlArg[];
  readonly annotations: Readonly<Record<string, string>>;
  /** The comment right before the element ("" when none). */
  readonly doc: string;
}

export type XmlSignal = XmlMethod;

export interface XmlProperty {
  readonly name: string;
  readonly type: string;
  readonly access: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly doc: string;
}

export interface XmlInterface {
  readonly name: string;
  readonly methods: ReadonlyMap<string, XmlMethod>;
  readonly properties: ReadonlyMap<string, XmlProperty>;
  readonly signals: ReadonlyMap<string, XmlSignal>;
  readonly doc: string;
}

export interface XmlIntrospection {
  /** Comments before and directly inside <node>, before the first interface (the file's header). */
  readonly doc: string;
  readonly interfaces: ReadonlyMap<string, XmlInterface>;
  /** Names of child <node> elements. */
  readonly children: readonly string[];
}

/** One element of fast-xml-parser's preserveOrder output: `{ tag: children, ':@': attributes }`. */
interface OrderedElement {
  readonly tag: string;
  readonly children: readonly unknown[];
  readonly attrs: Readonly<Record<string, string>>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A comment node → its text, else undefined. */
function commentText(node: unknown): string | undefined {
  if (!isRecord(node) || !Array.isArray(node['#comment'])) return undefined;
  return node['#comment']
    .map((t: unknown) => (isRecord(t) && typeof t['#text'] === 'string' ? t['#text'] : ''))
    .join('')
    .trim();
}

function element(node: unknown): OrderedElement | undefined {
  if (!isRecord(node)) return undefined;
  const tags = Object.keys(node).filter((k) => k !== ':@' && !k.startsWith('#'));
  const tag = tags[0];
  if (tags.length !== 1 || tag === undefined) return undefined;
  const children = node[tag];
  const rawAttrs = node[':@'];
  const attrs: Record<string, string> = {};
  if (isRecord(rawAttrs)) {
    for (const [k, v] of Object.entries(rawAttrs)) {
      if (typeof v !== 'string') throw new Error(`<${tag}>: attribute ${k} is not a string`);
      attrs[k] = v;
    }
  }
  return { tag, children: Array.isArray(children) ? children : [], attrs };
}

function need(el: OrderedElement, attr: string): string {
  const v = el.attrs[attr];
  if (v === undefined) throw new Error(`<${el.tag}> lacks the ${attr} attribute`);
  return v;
}

/** Walk children, pairing each element with the comment(s) since the previous element. */
function* withDocs(children: readonly unknown[]): Generator<[OrderedElement, string]> {
  let pending: string[] = [];
  for (const child of children) {
    const c = commentText(child);
    if (c !== undefined) {
      pending.push(c);
      continue;
    }
    const el = element(child);
    if (el === undefined) continue; // whitespace text
    yield [el, pending.join('\n')];
    pending = [];
  }
}

function annotations(el: OrderedElement): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [child] of withDocs(el.children)) {
    if (child.tag === 'annotation') out[need(child, 'name')] = need(child, 'value');
  }
  return out;
}

function member(el: OrderedElement, doc: string, defaultDirection: 'in' | 'out'): XmlMethod {
  const args: XmlArg[] = [];
  for (const [child] of withDocs(el.children)) {
    if (child.tag !== 'arg') continue;
    const direction = child.attrs['direction'] ?? defaultDirection;
    if (direction !== 'in' && direction !== 'out') throw new Error(`arg direction ${direction}`);
    args.push({ name: child.attrs['name'] ?? '', type: need(child, 'type'), direction });
  }
  return { name: need(el, 'name'), args, annotations: annotations(el), doc };
}

export function parseIntrospectionXml(xml: string): XmlIntrospection {
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    commentPropName: '#comment',
    ignoreDeclaration: true,
    ignorePiTags: true,
    parseAttributeValue: false,
    trimValues: true,
  });
  const top: unknown = parser.parse(xml);
  if (!Array.isArray(top)) throw new Error('introspection XML: unexpected parser output');
  const headerDocs: string[] = [];
  let root: OrderedElement | undefined;
  for (const node of top) {
    const c = commentText(node);
    if (c !== undefined) headerDocs.push(c);
    const el = element(node);
    if (el?.tag === 'node') root = el;
  }
  if (root === undefined) throw new Error('introspection XML: no <node> root');

  const interfaces = new Map<string, XmlInterface>();
  const children: string[] = [];
  let beforeFirstInterface = true;
  for (const node of root.children) {
    const c = commentText(node);
    if (c !== undefined && beforeFirstInterface) headerDocs.push(c);
    if (element(node)?.tag === 'interface') beforeFirstInterface = false;
  }
  for (const [el, doc] of withDocs(root.children)) {
    if (el.tag === 'node') {
      children.push(need(el, 'name'));
      continue;
    }
    if (el.tag !== 'interface') throw new Error(`introspection XML: unexpected <${el.tag}> in <node>`);
    const methods = new Map<string, XmlMethod>();
    const properties = new Map<string, XmlProperty>();
    const signals = new Map<string, XmlSignal>();
    for (const [m, mdoc] of withDocs(el.children)) {
      const name = need(m, 'name');
      const seen = methods.has(name) || properties.has(name) || signals.has(name);
      if (seen) throw new Error(`introspection XML: ${name} declared twice in ${need(el, 'name')}`);
      if (m.tag === 'method') methods.set(name, member(m, mdoc, 'in'));
      else if (m.tag === 'signal') signals.set(name, member(m, mdoc, 'out'));
      else if (m.tag === 'property') {
        properties.set(name, { name, type: need(m, 'type'), access: need(m, 'access'), annotations: annotations(m), doc: mdoc });
      } else if (m.tag !== 'annotation') throw new Error(`introspection XML: unexpected <${m.tag}> in interface`);
    }
    interfaces.set(need(el, 'name'), { name: need(el, 'name'), methods, properties, signals, doc });
  }
  return { doc: headerDocs.join('\n'), interfaces, children };
}
