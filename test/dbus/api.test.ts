/**
 * src/dbus/api.ts ⇔ dbus/org.ovirt.Node.Layers.xml (both directions), and the shipped bus policy, activation file
 * and polkit actions ⇔ api.ts. Any drift fails here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import type { ErrorCode } from '../../src/errors';
import { ImgbasedError } from '../../src/errors';
import {
  BUS_NAME,
  ERROR_NAMES,
  ERROR_PREFIX,
  INTERFACES,
  LAYERS_IFACE,
  MANAGER_PATH,
  POLKIT_ACTIONS,
  PUBLIC_INTERFACES,
  TRANSACTION_IFACE,
  TRANSACTION_PATH_PREFIX,
  dbusNextMembers,
  polkitActionFor,
} from '../../src/dbus/api';
import type { InterfaceSpec, MethodSpec } from '../../src/dbus/api';
import { parseIntrospectionXml } from './introspection-xml';
import type { XmlIntrospection } from './introspection-xml';

const ROOT = path.resolve(__dirname, '../..');
const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');

const xml: XmlIntrospection = parseIntrospectionXml(read('dbus/org.ovirt.Node.Layers.xml'));
const specs: Readonly<Record<string, InterfaceSpec>> = INTERFACES;
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

/** "Polkit: org.ovirt.node.layers.x." → the id; "No polkit action" → null; neither → undefined. */
function polkitOf(doc: string): string | null | undefined {
  const m = /Polkit:\s*([a-z0-9.-]+[a-z0-9])/.exec(doc);
  if (m?.[1] !== undefined) return m[1];
  return /No polkit action/i.test(doc) ? null : undefined;
}

/** "Errors: A, B, C (…)" (possibly spanning lines) → short names. */
function errorsOf(doc: string): string[] {
  const m = /Errors:\s*([A-Za-z, \n]+)/.exec(doc);
  if (m?.[1] === undefined) return [];
  return m[1]
    .split(/[,\s]+/)
    .filter((w) => /^[A-Z][A-Za-z]+$/.test(w));
}

describe('dbus/org.ovirt.Node.Layers.xml ⇔ src/dbus/api.ts', () => {
  it('declares exactly the two interfaces', () => {
    expect(sorted(xml.interfaces.keys())).toEqual(sorted(Object.keys(specs)));
    expect(sorted(Object.keys(specs))).toEqual(sorted([LAYERS_IFACE, TRANSACTION_IFACE]));
  });

  it('names the bus, manager path and transaction paths of api.ts in its header', () => {
    expect(xml.doc).toContain(`Bus name: ${BUS_NAME} `);
    expect(xml.doc).toContain(`Manager object: ${MANAGER_PATH}.`);
    expect(xml.doc).toContain(`Transactions: ${TRANSACTION_PATH_PREFIX}<id>, interface ${TRANSACTION_IFACE}.`);
  });

  for (const [ifaceName, spec] of Object.entries(INTERFACES as Readonly<Record<string, InterfaceSpec>>)) {
    describe(ifaceName, () => {
      const iface = xml.interfaces.get(ifaceName);
      if (iface === undefined) throw new Error(`XML lacks ${ifaceName}`);

      it('has the same methods, properties and signals', () => {
        expect(sorted(iface.methods.keys())).toEqual(sorted(Object.keys(spec.methods)));
        expect(sorted(iface.properties.keys())).toEqual(sorted(Object.keys(spec.properties)));
        expect(sorted(iface.signals.keys())).toEqual(sorted(Object.keys(spec.signals)));
      });

      for (const [name, m] of Object.entries(spec.methods)) {
        it(`method ${name}: arguments, signatures, polkit action and errors`, () => {
          const x = iface.methods.get(name);
          if (x === undefined) throw new Error(`XML lacks method ${name}`);
          const pick = (dir: 'in' | 'out'): { name: string; type: string }[] =>
            x.args.filter((arg) => arg.direction === dir).map((arg) => ({ name: arg.name, type: arg.type }));
          expect(pick('in')).toEqual(m.in.map((arg) => ({ ...arg })));
          expect(pick('out')).toEqual(m.out.map((arg) => ({ ...arg })));
          expect(m.inSignature).toBe(m.in.map((arg) => arg.type).join(''));
          expect(m.outSignature).toBe(m.out.map((arg) => arg.type).join(''));
          const action = polkitOf(x.doc);
          if (action === undefined) throw new Error(`${name}: its XML comment has neither "Polkit: …" nor "No polkit action"`);
          expect(action).toBe(m.polkit);
          expect(sorted(errorsOf(x.doc))).toEqual(sorted(m.errors));
        });
      }

      for (const [name, p] of Object.entries(spec.properties)) {
        it(`property ${name}: type, access and EmitsChangedSignal`, () => {
          const x = iface.properties.get(name);
          if (x === undefined) throw new Error(`XML lacks property ${name}`);
          expect(x.type).toBe(p.signature);
          expect(x.access).toBe(p.access);
          const emits = x.annotations['org.freedesktop.DBus.Property.EmitsChangedSignal'];
          expect(emits === 'true').toBe(p.emitsChanged);
        });
      }

      for (const [name, s] of Object.entries(spec.signals)) {
        it(`signal ${name}: arguments and signature`, () => {
          const x = iface.signals.get(name);
          if (x === undefined) throw new Error(`XML lacks signal ${name}`);
          expect(x.args.map((arg) => ({ name: arg.name, type: arg.type }))).toEqual(s.args.map((arg) => ({ ...arg })));
          expect(s.signature).toBe(s.args.map((arg) => arg.type).join(''));
        });
      }
    });
  }

  it('every property is read-only (anyone may call Properties.Set once the bus policy lets them in)', () => {
    for (const iface of xml.interfaces.values()) {
      for (const p of iface.properties.values()) expect(`${iface.name}.${p.name}:${p.access}`).toBe(`${iface.name}.${p.name}:read`);
    }
  });

  it('lists the error names of api.ts in its header, and every method error is one of them', () => {
    const m = /org\.ovirt\.Node\.Error\.\{([^}]*)\}/.exec(xml.doc);
    if (m?.[1] === undefined) throw new Error('XML header lacks the org.ovirt.Node.Error.{…} list');
    const header = m[1].split(/[,\s]+/).filter(Boolean);
    expect(sorted(header)).toEqual(sorted(Object.keys(ERROR_NAMES)));
    for (const [short, full] of Object.entries(ERROR_NAMES)) expect(full).toBe(ERROR_PREFIX + short);
  });

  it('uses every polkit action of api.ts, and no other', () => {
    const used = new Set<string>();
    for (const iface of xml.interfaces.values()) {
      for (const method of iface.methods.values()) {
        const action = polkitOf(method.doc);
        if (typeof action === 'string') used.add(action);
      }
    }
    expect(sorted(used)).toEqual(sorted(Object.values(POLKIT_ACTIONS)));
  });

  it('polkitActionFor() and dbusNextMembers() follow the specs', () => {
    expect(polkitActionFor(LAYERS_IFACE, 'Upgrade')).toBe('org.ovirt.node.layers.upgrade');
    expect(polkitActionFor(LAYERS_IFACE, 'RemoveBase')).toBe('org.ovirt.node.layers.cleanup');
    expect(polkitActionFor(LAYERS_IFACE, 'Check')).toBeNull();
    expect(polkitActionFor(TRANSACTION_IFACE, 'Cancel')).toBe('org.ovirt.node.layers.cancel');
    expect(() => polkitActionFor(LAYERS_IFACE, 'Nope')).toThrow();
    expect(() => polkitActionFor(LAYERS_IFACE, 'toString')).toThrow();
    const members = dbusNextMembers(INTERFACES[LAYERS_IFACE]);
    expect(members.methods['Upgrade']).toEqual({ inSignature: 'sa{sv}', outSignature: 'o' });
    expect(members.properties['Layers']).toEqual({ signature: 'aa{sv}', access: 'read' });
    expect(dbusNextMembers(INTERFACES[TRANSACTION_IFACE]).signals['Progress']).toEqual({ signature: 'usstt' });
  });
});

describe('src/errors.ts ⇔ api.ts', () => {
  it('maps every error code to a D-Bus error name the API declares', () => {
    // Record<ErrorCode, …>: a new ErrorCode that is not listed here does not compile.
    const codes: Record<ErrorCode, true> = {
      InvalidArgument: true, InvalidName: true, NotAuthorized: true, Busy: true, NotFound: true, NoSpace: true,
      VerificationFailed: true, NotNewer: true, Cancelled: true, VMsRunning: true, ToolFailed: true, Failed: true,
    };
    const declared: readonly string[] = Object.values(ERROR_NAMES);
    for (const code of Object.keys(codes) as ErrorCode[]) {
      expect(declared).toContain(new ImgbasedError(code, 'x').dbusName);
    }
  });
});

const xmlParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (_name: string, _path: unknown, _leaf: boolean, isAttribute: boolean) => !isAttribute });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** Child elements `tag` of an isArray-parsed element. */
function kids(el: unknown, tag: string): Record<string, unknown>[] {
  if (!isRecord(el)) return [];
  const v = el[tag];
  return Array.isArray(v) ? v.filter(isRecord) : [];
}
/** Text of the single child `tag`. */
function text(el: unknown, tag: string): string {
  const [k] = kids(el, tag);
  const t = k?.['#text'];
  if (typeof t === 'string') return t.trim();
  const raw = isRecord(el) ? el[tag] : undefined;
  if (Array.isArray(raw) && typeof raw[0] === 'string') return raw[0].trim();
  return '';
}
const attr = (el: Record<string, unknown>, name: string): string | undefined => {
  const v = el[name];
  return typeof v === 'string' ? v : undefined;
};

describe('polkit/org.ovirt.node.layers.policy ⇔ api.ts', () => {
  const doc: unknown = xmlParser.parse(read('polkit/org.ovirt.node.layers.policy'));
  const [config] = kids(doc, 'policyconfig');
  const actions = kids(config, 'action');

  it('declares exactly the actions of api.ts', () => {
    expect(sorted(actions.map((a) => attr(a, 'id') ?? '?'))).toEqual(sorted(Object.values(POLKIT_ACTIONS)));
  });

  it('gives every action a description, a message and the defaults no / no / auth_admin_keep', () => {
    for (const action of actions) {
      const id = attr(action, 'id') ?? '?';
      expect(text(action, 'description').length).toBeGreaterThan(10);
      expect(text(action, 'message')).toMatch(/^Authentication is required to .+\.$/);
      const [defaults] = kids(action, 'defaults');
      expect({ id, any: text(defaults, 'allow_any'), inactive: text(defaults, 'allow_inactive'), active: text(defaults, 'allow_active') })
        .toEqual({ id, any: 'no', inactive: 'no', active: 'auth_admin_keep' });
    }
  });
});

describe('dbus/org.ovirt.Node.conf (bus policy) ⇔ api.ts', () => {
  const doc: unknown = xmlParser.parse(read('dbus/org.ovirt.Node.conf'));
  const [busconfig] = kids(doc, 'busconfig');
  const policies = kids(busconfig, 'policy');

  it('lets only root own the bus name', () => {
    const owners = policies.flatMap((p) => kids(p, 'allow').filter((a) => attr(a, 'own') !== undefined).map((a) => ({
      context: attr(p, 'user') !== undefined ? `user=${attr(p, 'user') ?? ''}` : `context=${attr(p, 'context') ?? ''}`,
      own: attr(a, 'own'),
    })));
    expect(owners).toEqual([{ context: 'user=root', own: BUS_NAME }]);
    for (const p of policies) for (const a of kids(p, 'allow')) expect(attr(a, 'own_prefix')).toBeUndefined();
  });

  it('lets anyone send to exactly the public interfaces, and allows nothing else', () => {
    const [def, ...more] = policies.filter((p) => attr(p, 'context') === 'default');
    expect(more).toHaveLength(0);
    const sends = kids(def, 'allow').map((a) => {
      const keys = sorted(Object.keys(a));
      expect(keys).toEqual(['send_destination', 'send_interface']);
      expect(attr(a, 'send_destination')).toBe(BUS_NAME);
      return attr(a, 'send_interface') ?? '?';
    });
    expect(sorted(sends)).toEqual(sorted(PUBLIC_INTERFACES));
    expect(kids(def, 'deny')).toHaveLength(0);
    // No policy block other than root's (own) and the default one.
    expect(policies).toHaveLength(2);
  });
});

describe('dbus/org.ovirt.Node.service (activation) ⇔ api.ts', () => {
  it('activates imgbased.service through systemd for the bus name', () => {
    const lines = read('dbus/org.ovirt.Node.service').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('[D-BUS Service]');
    const kv = Object.fromEntries(lines.slice(1).map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    }));
    expect(kv).toEqual({ Name: BUS_NAME, Exec: '/bin/false', User: 'root', SystemdService: 'imgbased.service' });
  });
});

// Keep the MethodSpec import meaningful for readers: every Layers method with a polkit action is a mutating one.
it('mutating methods are exactly those with a polkit action', () => {
  const mutating = Object.entries(INTERFACES[LAYERS_IFACE].methods as Readonly<Record<string, MethodSpec>>)
    .filter(([, m]) => m.polkit !== null)
    .map(([name]) => name);
  expect(sorted(mutating)).toEqual(sorted([
    'Upgrade', 'Rollback', 'Cleanup', 'RemoveBase', 'Pin', 'AutomaticUpdateTrigger', 'SetAutomaticUpdatePolicy', 'CompleteBoot',
    'CheckDeep', // read-only, but it mounts and reads every base: an administrator's call
  ]));
});
