/**
 * mibs/OVIRT-NODE-LAYERS-MIB.txt: loads cleanly with net-snmp's parser (snmptranslate, strict about symbol conflicts
 * and with warnings on) and with npm net-snmp's module store, and every OID constant of src/snmp/mib-tree.ts resolves
 * to the same name in the MIB (both directions: no object in the MIB without a constant, no constant without an
 * object).
 */
import * as path from 'node:path';
import * as snmp from 'net-snmp';
import { REPO, runCommand } from '../bus/harness';
import { BOOT_STATE, LAYER_COLUMNS, LAYER_ENTRY, LAYER_INDEX_COLUMN, LAYER_TABLE, MIB_MODULE, NOTIFICATION_OBJECTS, NOTIFICATIONS, ROOT, SCALARS } from '../../src/snmp/mib-tree';
import { formatOid } from '../../src/snmp/oid';
import { MIB_FILE, snmpTool } from './snmp-harness';

const ALL: Record<string, readonly number[]> = {
  ovirtNodeLayersMIB: ROOT,
  ...SCALARS,
  ovnLayerTable: LAYER_TABLE,
  ovnLayerEntry: LAYER_ENTRY,
  ovnLayerIndex: [...LAYER_ENTRY, LAYER_INDEX_COLUMN],
  ...Object.fromEntries(Object.entries(LAYER_COLUMNS).map(([k, c]) => [k, [...LAYER_ENTRY, c]])),
  ...NOTIFICATIONS,
};

const SMILINT = '/usr/bin/smilint';

describe('OVIRT-NODE-LAYERS-MIB', () => {
  it('snmptranslate loads it without a warning or error (-Pw -PW, conflicts are errors)', async () => {
    const r = await snmpTool('snmptranslate', ['-Pw', '-PW', '-m', MIB_MODULE, '-On', `${MIB_MODULE}::ovirtNodeLayersMIB`]);
    expect(r.code).toBe(0);
    // With warnings on, net-snmp's parser also comments on the bundled SNMPv2-TC ("string too long", "MACRO parsed
    // and ignored"): only lines about our file, and unresolved imports or identifiers, count.
    // It also says "No known translation for type" for every conceptual row's SEQUENCE type (SNMPv2-MIB's SysOREntry
    // gets the same): that one is not a problem either.
    const ours = r.stderr.split('\n')
      .filter((l) => l.includes('OVIRT-NODE-LAYERS-MIB.txt') || /Cannot find module|Undefined identifier|Unlinked OID|Did not find/.test(l))
      .filter((l) => !/No known translation for type \(OvnLayerEntry\)/.test(l));
    expect(ours).toEqual([]);
    expect(r.stdout.trim()).toBe(`.${formatOid(ROOT)}`);
  });

  // libsmi's smilint (Debian package smitools), the strict SMIv2 checker, at level 4 (warnings included). The
  // SNMPv2 base modules come from npm net-snmp's copy (Debian's libsmi ships none without the non-free mibs).
  it('smilint -l 4 finds nothing to say (smitools is in scripts/apt-packages.txt)', async () => {
    const r = await runCommand([SMILINT, '-l', '4', '-s', MIB_FILE], { env: { SMIPATH: path.join(REPO, 'node_modules/net-snmp/lib/mibs') } });
    expect({ code: r.code, out: `${r.stdout}${r.stderr}` }).toEqual({ code: 0, out: '' });
  });

  it('OvnBootState enumerates notAssessed(1) .. other(5) as mib-tree.ts numbers them', async () => {
    const r = await snmpTool('snmptranslate', ['-m', MIB_MODULE, '-Td', `${MIB_MODULE}::ovnLayerBootState`]);
    expect(r.stdout).toMatch(/SYNTAX\s+INTEGER\s*\{notAssessed\(1\), trial\(2\), good\(3\), bad\(4\), other\(5\)\s*\}/);
    expect(BOOT_STATE).toEqual({ notAssessed: 1, trial: 2, good: 3, bad: 4, other: 5 });
  });

  it('every constant in mib-tree.ts is the MIB\'s OID for that name, and the MIB has nothing else', async () => {
    const names = Object.keys(ALL);
    const r = await snmpTool('snmptranslate', ['-m', MIB_MODULE, '-On', ...names.map((n) => `${MIB_MODULE}::${n}`)]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(names.map((n) => `.${formatOid(ALL[n] ?? [])}`));
    // the other direction: every node below ROOT that is an object or notification (not a plain OBJECT IDENTIFIER)
    const tree = await snmpTool('snmptranslate', ['-m', MIB_MODULE, '-Tz']);
    const ours = tree.stdout.split('\n').map((l) => /^"(\w+)"\s+"([\d.]+)"$/.exec(l.trim())).filter((m): m is RegExpExecArray => m !== null)
      .filter((m) => (m[2] ?? '').startsWith(`${formatOid(ROOT)}.`) || m[2] === formatOid(ROOT));
    const objects = new Set(ours.map((m) => m[1]));
    const plainNodes = ['ovnNotifications', 'ovnObjects', 'ovnConformance', 'ovnHost', 'ovnPool', 'ovnUpdate', 'ovnActiveTx', 'ovnLastTx',
      'ovnCompliances', 'ovnGroups', 'ovnCompliance', 'ovnHostGroup', 'ovnPoolGroup', 'ovnUpdateGroup', 'ovnTransactionGroup', 'ovnLayerGroup',
      'ovnNotificationGroup', 'ovnComplianceBootAssessment', 'ovnBootAssessmentGroup', 'ovnBootNotificationGroup'];
    expect([...objects].filter((n) => n !== undefined && !plainNodes.includes(n)).sort()).toEqual(names.sort());
  });

  it('the notifications carry the OBJECTS mib-tree.ts sends', async () => {
    for (const [n, objs] of Object.entries(NOTIFICATION_OBJECTS)) {
      const r = await snmpTool('snmptranslate', ['-m', MIB_MODULE, '-Td', `${MIB_MODULE}::${n}`]);
      const m = /OBJECTS\s*\{([^}]*)\}/.exec(r.stdout);
      expect(m?.[1]?.split(',').map((s) => s.trim())).toEqual(objs);
    }
  });

  it('npm net-snmp\'s module store parses it into the same objects', () => {
    const store = snmp.createModuleStore();
    store.loadFromFile(MIB_FILE);
    const providers = store.getProvidersForModule(MIB_MODULE);
    const byName = new Map(providers.map((p) => [p.name, p.oid]));
    for (const [name, oid] of Object.entries(SCALARS)) expect(byName.get(name)).toBe(formatOid(oid));
    expect(byName.get('ovnLayerEntry')).toBe(formatOid(LAYER_ENTRY));
  });
});
