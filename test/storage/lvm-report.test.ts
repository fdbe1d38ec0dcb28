/**
 * Parsing lvm2 reports (host tier: pure code, no LVM needed).
 *
 * The fixtures below are real `lvs`/`vgs --reportformat json --units b --nosuffix` output of lvm2 2.03.16 (Debian 12),
 * captured in the VM tier by test/vm/fixtures/capture-imgbased-layout.sh, which lays a disk out with real imgbased's
 * exact lvm2 command sequence (installer layout, `layout --init`, one update). Trimmed to the rows each test needs.
 */
import { FailedError } from '../../src/errors';
import { TAG } from '../../src/storage/backend';
import {
  LV_FIELDS,
  decodeLvAttr,
  imgbasedRole,
  isInternalLv,
  parseLvmconfigInt,
  parseLvsReport,
  parseVgsReport,
  poolFreeBytes,
  splitTags,
  volumeInfo,
  type LvRecord,
} from '../../src/storage/lvm-report';
import { discoverLayout, type Layout } from '../../src/model/layout';

const B1 = 'ovirt-node-ng-4.4.10.2-0.20220303.0';
const B2 = 'ovirt-node-ng-4.5.6-0.20250101.0';

/** A host after `imgbased layout --init` and one update, booted into B2+1 (lvm2 2.03.16 `json` format). */
const IMGBASED_HOST_LVS = `  {
      "report": [
          {
              "lv": [
                  {"lv_name":"home", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"1073741824", "lv_tags":"imgbased:volume", "pool_lv":"pool00", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"${B1}", "vg_name":"onn", "lv_attr":"Vwi---tz-k", "lv_size":"6442450944", "lv_tags":"imgbased:layer", "pool_lv":"pool00", "origin":"root", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"${B1}+1", "vg_name":"onn", "lv_attr":"Vwi-aotz--", "lv_size":"6442450944", "lv_tags":"imgbased:layer", "pool_lv":"pool00", "origin":"${B1}", "data_percent":"2.67", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"${B2}", "vg_name":"onn", "lv_attr":"Vri---tz-k", "lv_size":"6442450944", "lv_tags":"imgbased:base", "pool_lv":"pool00", "origin":"", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"${B2}+1", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"6442450944", "lv_tags":"imgbased:layer", "pool_lv":"pool00", "origin":"${B2}", "data_percent":"7.71", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"pool00", "vg_name":"onn", "lv_attr":"twi-aotz--", "lv_size":"8589934592", "lv_tags":"imgbased:pool", "pool_lv":"", "origin":"", "data_percent":"8.71", "metadata_percent":"1.61", "lv_metadata_size":"1073741824", "lv_profile":"imgbased-pool"},
                  {"lv_name":"root", "vg_name":"onn", "lv_attr":"Vri---tz-k", "lv_size":"6442450944", "lv_tags":"imgbased:init", "pool_lv":"pool00", "origin":"", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"swap", "vg_name":"onn", "lv_attr":"-wi-a-----", "lv_size":"536870912", "lv_tags":"", "pool_lv":"", "origin":"", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"tmp", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"1073741824", "lv_tags":"imgbased:volume", "pool_lv":"pool00", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"var", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"16106127360", "lv_tags":"", "pool_lv":"pool00", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"var_crash", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"10737418240", "lv_tags":"imgbased:volume", "pool_lv":"pool00", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"var_log", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"8589934592", "lv_tags":"imgbased:volume", "pool_lv":"pool00", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"var_log_audit", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"2147483648", "lv_tags":"imgbased:volume", "pool_lv":"pool00", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""},
                  {"lv_name":"var_tmp", "vg_name":"onn", "lv_attr":"Vwi-a-tz--", "lv_size":"10737418240", "lv_tags":"imgbased:volume", "pool_lv":"pool00", "origin":"", "data_percent":"0.67", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""}
              ]
          }
      ]
  }
`;

const IMGBASED_HOST_VGS = `  {
      "report": [
          {
              "vg": [
                  {"vg_name":"onn", "vg_tags":"imgbased:vg", "vg_size":"21470642176", "vg_free":"10196353024", "vg_extent_size":"4194304", "vg_profile":""}
              ]
          }
      ]
  }
`;

/** Mid-update: the new base protected but active (activated with -K) while its layer is made. */
const ACTIVE_BASE_ROW = `{"report":[{"lv":[{"lv_name":"${B2}", "vg_name":"onn", "lv_attr":"Vri-a-tz-k", "lv_size":"6442450944", "lv_tags":"imgbased:base", "pool_lv":"pool00", "origin":"", "data_percent":"7.71", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""}]}]}`;

/** The same kind of rows in lvm2's `json_std` format (numbers as numbers, null for unset, lists as arrays). */
const JSON_STD_LVS = {
  report: [
    {
      lv: [
        {
          lv_name: 'pool00', vg_name: 'onn', lv_attr: 'twi-aotz--', lv_size: 8589934592, lv_tags: ['imgbased:pool'],
          pool_lv: null, origin: null, data_percent: 50, metadata_percent: 1.5, lv_metadata_size: 1073741824,
          lv_profile: 'imgbased-pool',
        },
        {
          lv_name: `${B2}+1`, vg_name: 'onn', lv_attr: 'Vwi-a-tz--', lv_size: 6442450944,
          lv_tags: ['imgbased:layer', 'custom'], pool_lv: 'pool00', origin: B2, data_percent: 3.59,
          metadata_percent: null, lv_metadata_size: null, lv_profile: null,
        },
      ],
    },
  ],
};

function byName(rows: LvRecord[]): Map<string, LvRecord> {
  return new Map(rows.map((r) => [r.name, r]));
}

describe('decodeLvAttr', () => {
  it.each([
    // attr, thinVolume, thinPool, readOnly, active, open, activationSkip  — the states imgbased produces
    ['Vri---tz-k', true, false, true, false, false, true], // protected base at rest (and the init LV)
    ['Vri-a-tz-k', true, false, true, true, false, true], // protected base, activated with -K
    ['Vwi---tz-k', true, false, false, false, false, true], // fresh snapshot / first base from layout --init
    ['Vwi-aotz--', true, false, false, true, true, false], // booted layer, mounted
    ['Vwi-a-tz--', true, false, false, true, false, false], // unprotected / new layer
    ['twi-aotz--', false, true, false, true, true, false], // the thin pool
    ['-wi-ao----', false, false, false, true, true, false], // linear swap
  ])('%s', (attr, thinVolume, thinPool, readOnly, active, open, activationSkip) => {
    expect(decodeLvAttr(attr)).toMatchObject({ thinVolume, thinPool, readOnly, active, open, activationSkip });
  });

  it('keeps the raw characters: permission R is read-only activation, not --permission r', () => {
    const a = decodeLvAttr('VRi-a-tz--');
    expect(a).toMatchObject({ permission: 'R', readOnly: false, volumeType: 'V', state: 'a', targetType: 't' });
    expect(decodeLvAttr('twi-aotzD-')).toMatchObject({ health: 'D', zeroing: true });
    expect(decodeLvAttr('twi-cotz--')).toMatchObject({ state: 'c', active: false });
  });

  it('rejects malformed attrs', () => {
    expect(() => decodeLvAttr('Vwi-a-tz-')).toThrow(FailedError);
    expect(() => decodeLvAttr('Vxi-a-tz--')).toThrow(/permission/);
  });
});

describe('splitTags', () => {
  it('splits lvm2 json strings and accepts json_std arrays', () => {
    expect(splitTags('')).toEqual([]);
    expect(splitTags(null)).toEqual([]);
    expect(splitTags('imgbased:base')).toEqual(['imgbased:base']);
    expect(splitTags('imgbased:layer,custom,a=b')).toEqual(['imgbased:layer', 'custom', 'a=b']);
    expect(splitTags(['imgbased:vg'])).toEqual(['imgbased:vg']);
    expect(() => splitTags(3)).toThrow(FailedError);
    expect(() => splitTags(['a', 1])).toThrow(FailedError);
  });
});

describe('parseLvsReport on a host laid out by real imgbased', () => {
  const rows = byName(parseLvsReport(IMGBASED_HOST_LVS));

  it('reads every row with typed values', () => {
    expect(rows.size).toBe(14);
    expect(rows.get(`${B1}+1`)).toMatchObject({
      vg: 'onn',
      attrString: 'Vwi-aotz--',
      sizeBytes: 6442450944,
      tags: [TAG.layer],
      pool: 'pool00',
      origin: B1,
      dataPercent: 2.67,
      metadataPercent: null,
      profile: null,
    });
    expect(rows.get('pool00')).toMatchObject({
      sizeBytes: 8589934592,
      dataPercent: 8.71,
      metadataPercent: 1.61,
      metadataSizeBytes: 1073741824,
      profile: 'imgbased-pool',
      tags: [TAG.pool],
      pool: null,
    });
    expect(rows.get('swap')).toMatchObject({ tags: [], pool: null, dataPercent: null });
  });

  it('the init LV and a later base are protected; the first base is writeable with activation skip', () => {
    expect(rows.get('root')?.attr).toMatchObject({ readOnly: true, activationSkip: true, active: false });
    expect(rows.get(B2)?.attr).toMatchObject({ readOnly: true, activationSkip: true, active: false });
    expect(rows.get(B1)?.attr).toMatchObject({ readOnly: false, activationSkip: true, active: false });
    expect(rows.get(`${B1}+1`)?.attr).toMatchObject({ readOnly: false, activationSkip: false, active: true, open: true });
    // inactive thin volumes report no data_percent
    expect(rows.get(B2)?.dataPercent).toBeNull();
  });

  it('a protected base activated with -K while its layer is made: Vri-a-tz-k', () => {
    const [base] = parseLvsReport(ACTIVE_BASE_ROW);
    expect(base?.attrString).toBe('Vri-a-tz-k');
    expect(base?.attr).toMatchObject({ readOnly: true, activationSkip: true, active: true, open: false });
    expect(base?.dataPercent).toBe(7.71);
    expect(base && imgbasedRole(base)).toBe('base');
  });

  it('tells bases from layers by NAME: the first base carries imgbased:layer', () => {
    expect(rows.get(B1)?.tags).toEqual([TAG.layer]);
    const roles = Object.fromEntries([...rows.values()].map((r) => [r.name, imgbasedRole(r)]));
    expect(roles).toEqual({
      home: 'volume',
      [B1]: 'base',
      [`${B1}+1`]: 'layer',
      [B2]: 'base',
      [`${B2}+1`]: 'layer',
      pool00: 'pool',
      root: 'init',
      swap: null,
      tmp: 'volume',
      var: null,
      var_crash: 'volume',
      var_log: 'volume',
      var_log_audit: 'volume',
      var_tmp: 'volume',
    });
  });

  it('the pool is internal; volumes are not', () => {
    const pool = rows.get('pool00');
    expect(pool && isInternalLv(pool)).toBe(true);
    expect([...rows.values()].filter((r) => !isInternalLv(r)).map((r) => r.name)).not.toContain('pool00');
    expect(isInternalLv({ ...(rows.get('swap') as LvRecord), name: '[lvol0_pmspare]' })).toBe(true);
  });

  it('computes the pool free space from data_percent', () => {
    const pool = rows.get('pool00') as LvRecord;
    const free = poolFreeBytes(pool);
    expect(free).toBe(8589934592 - Math.ceil(8589934592 * 0.0871));
    expect(poolFreeBytes({ ...pool, dataPercent: 100 })).toBe(0);
  });
});

describe('parseLvsReport: both lvm2 JSON flavours, and bad input', () => {
  it('accepts json_std (numbers, nulls, arrays)', () => {
    const rows = byName(parseLvsReport(JSON_STD_LVS));
    expect(rows.get('pool00')).toMatchObject({ dataPercent: 50, pool: null, tags: [TAG.pool] });
    expect(rows.get(`${B2}+1`)).toMatchObject({ tags: [TAG.layer, 'custom'], origin: B2, metadataPercent: null });
  });

  it('accepts an empty VG and several report objects', () => {
    expect(parseLvsReport('{"report":[{"lv":[]}]}')).toEqual([]);
    expect(parseLvsReport({ report: [{ lv: [] }, {}] })).toEqual([]);
  });

  it('throws FailedError naming the problem', () => {
    const row = JSON_STD_LVS.report[0]?.lv[1] as Record<string, unknown>;
    const bad = (r: Record<string, unknown>): unknown => ({ report: [{ lv: [r] }] });
    expect(() => parseLvsReport('  WARNING: something\n')).toThrow(/not JSON: WARNING: something/);
    expect(() => parseLvsReport({ lv: [] })).toThrow(/no "report" array/);
    expect(() => parseLvsReport({ report: [{ lv: {} }] })).toThrow(/not an array/);
    expect(() => parseLvsReport(bad({ ...row, lv_size: '1.00g' }))).toThrow(/--units b --nosuffix/);
    expect(() => parseLvsReport(bad({ ...row, data_percent: 'x' }))).toThrow(/data_percent is not a number/);
    const { origin: _dropped, ...noOrigin } = row;
    expect(() => parseLvsReport(bad(noOrigin))).toThrow(/field origin missing/);
    expect(() => parseLvsReport(bad({ ...row, lv_name: 7 }))).toThrow(FailedError);
  });

  it('LV_FIELDS are exactly the fields the parser reads', () => {
    const row = JSON_STD_LVS.report[0]?.lv[0] as Record<string, unknown>;
    expect(Object.keys(row).sort()).toEqual([...LV_FIELDS].sort());
  });
});

describe('parseVgsReport', () => {
  it('reads the imgbased VG', () => {
    expect(parseVgsReport(IMGBASED_HOST_VGS)).toEqual([
      {
        name: 'onn',
        tags: [TAG.vg],
        sizeBytes: 21470642176,
        freeBytes: 10196353024,
        extentSizeBytes: 4194304,
        profile: null,
      },
    ]);
  });

  it('rejects sizes with units', () => {
    const json = { report: [{ vg: [{ vg_name: 'x', vg_tags: '', vg_size: '20.00g', vg_free: '0', vg_extent_size: '4', vg_profile: '' }] }] };
    expect(() => parseVgsReport(json)).toThrow(/vg_size/);
  });
});

describe('parseLvmconfigInt', () => {
  it('reads lvmconfig key=value output', () => {
    expect(parseLvmconfigInt('thin_pool_autoextend_threshold=70\n', 'thin_pool_autoextend_threshold')).toBe(70);
    expect(parseLvmconfigInt('  thin_pool_autoextend_threshold = 100\n', 'thin_pool_autoextend_threshold')).toBe(100);
    expect(parseLvmconfigInt('other=1\n', 'thin_pool_autoextend_threshold')).toBeNull();
    expect(parseLvmconfigInt('', 'thin_pool_autoextend_threshold')).toBeNull();
  });
});

/**
 * Delta bases (issue 10): a new base is a thin snapshot of the previous base, so bases now carry an `origin` — the
 * previous base, nothing once that base was removed, or `-NAME` when lvm.conf has record_lvs_history=1 (the removed
 * origin is kept as a historical LV). Rows in the lvm2 2.03.16 `json` format of the fixtures above, as the lvm
 * backend leaves them (init LV, first base from init, two delta bases, one layer each, the newest booted).
 */
describe('a delta layout: bases that are thin snapshots of older bases', () => {
  const D1 = 'ovirt-node-ng-4.5.4-0.20250101.0';
  const D2 = 'ovirt-node-ng-4.5.5-0.20250301.0';
  const D3 = 'ovirt-node-ng-4.5.6-0.20250601.0';
  const row = (name: string, attr: string, tags: string, origin: string): string =>
    `{"lv_name":"${name}", "vg_name":"onn", "lv_attr":"${attr}", "lv_size":"268435456", "lv_tags":"${tags}", "pool_lv":"pool00", ` +
    `"origin":"${origin}", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_profile":""}`;
  const POOL_ROW = '{"lv_name":"pool00", "vg_name":"onn", "lv_attr":"twi-aotz--", "lv_size":"1073741824", "lv_tags":"imgbased:pool", ' +
    '"pool_lv":"", "origin":"", "data_percent":"21.30", "metadata_percent":"1.20", "lv_metadata_size":"1073741824", "lv_profile":"imgbased-pool"}';
  /** lvs of the VG; `d2Origin` is what lvm2 prints as D2's origin (D1 present: "D1"; D1 removed: "" or "-D1"). */
  function report(d2Origin: string, withD1: boolean): string {
    const rows = [
      ...(withD1 ? [row(D1, 'Vri---tz-k', 'imgbased:base', 'root'), row(`${D1}+1`, 'Vwi-a-tz--', 'imgbased:layer', D1)] : []),
      row(D2, 'Vri---tz-k', 'imgbased:base', d2Origin),
      row(`${D2}+1`, 'Vwi-a-tz--', 'imgbased:layer', D2),
      row(D3, 'Vri---tz-k', 'imgbased:base', D2),
      row(`${D3}+1`, 'Vwi-aotz--', 'imgbased:layer', D3),
      POOL_ROW,
      row('root', 'Vri---tz-k', 'imgbased:init', ''),
    ];
    return `  {\n      "report": [\n          {\n              "lv": [\n                  ${rows.join(',\n                  ')}\n              ]\n          }\n      ]\n  }\n`;
  }
  const layoutOf = (text: string): Layout =>
    discoverLayout(parseLvsReport(text).filter((r) => !isInternalLv(r)).map((r) => volumeInfo(r, 'pool00')));
  const shape = (l: Layout): unknown => ({
    bases: l.bases.map((b) => ({ name: b.name, volume: b.volume?.name ?? null, layers: b.layers.map((x) => x.name) })),
    layers: l.layers.map((x) => x.name),
    init: l.init?.name ?? null,
    unknown: l.unknown.map((v) => v.name),
  });

  it('a base with an origin is still a base: roles come from tags and names, never from origin', () => {
    const rows = byName(parseLvsReport(report(D1, true)));
    expect(rows.get(D2)).toMatchObject({ origin: D1, tags: [TAG.base], attrString: 'Vri---tz-k' });
    expect(rows.get(D3)?.origin).toBe(D2);
    expect(Object.fromEntries([...rows.values()].map((r) => [r.name, imgbasedRole(r)]))).toEqual({
      [D1]: 'base', [`${D1}+1`]: 'layer', [D2]: 'base', [`${D2}+1`]: 'layer', [D3]: 'base', [`${D3}+1`]: 'layer',
      pool00: 'pool', root: 'init',
    });
  });

  it('the volumes the backend reports carry origin as information only', () => {
    const infos = parseLvsReport(report(D1, true)).filter((r) => !isInternalLv(r)).map((r) => volumeInfo(r, 'pool00'));
    expect(infos.find((v) => v.name === D2)).toEqual({
      name: D2, tags: [TAG.base], sizeBytes: 268435456, readOnly: true, activationSkip: true, active: false, origin: D1, thin: true,
    });
    expect(infos.find((v) => v.name === `${D3}+1`)).toMatchObject({ origin: D3, readOnly: false, active: true, activationSkip: false });
  });

  it('discovery gives the same layout whether origins are set, empty or dangling', () => {
    const full = layoutOf(report(D1, true));
    expect(shape(full)).toEqual({
      bases: [
        { name: D1, volume: D1, layers: [`${D1}+1`] },
        { name: D2, volume: D2, layers: [`${D2}+1`] },
        { name: D3, volume: D3, layers: [`${D3}+1`] },
      ],
      layers: [`${D1}+1`, `${D2}+1`, `${D3}+1`],
      init: 'root',
      unknown: [],
    });
    // the same volumes with every origin blanked (what an older lvm2 or a layout by full writes shows)
    const blanked = parseLvsReport(report(D1, true)).filter((r) => !isInternalLv(r)).map((r) => ({ ...volumeInfo(r, 'pool00'), origin: null }));
    expect(shape(discoverLayout(blanked))).toEqual(shape(full));

    // D1 (the origin of D2) removed with its layer: D2's origin is empty, or "-D1" with record_lvs_history=1
    const { bases: [, ...bases], layers: [, ...layers], ...rest } = shape(full) as { bases: unknown[]; layers: unknown[] };
    for (const origin of ['', `-${D1}`]) {
      const after = layoutOf(report(origin, false));
      expect({ origin, layout: shape(after) }).toEqual({ origin, layout: { ...rest, bases, layers } });
      expect(after.bases[0]?.volume?.origin).toBe(origin === '' ? null : origin);
    }
  });
});
