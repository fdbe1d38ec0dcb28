/**
 * The OIDs of mibs/OVIRT-NODE-LAYERS-MIB.txt as TypeScript constants. The MIB file is the source of truth;
 * test/snmp/mib.test.ts resolves every name below with snmptranslate and fails when the two disagree.
 */
import type { Oid } from './oid';

export const MIB_MODULE = 'OVIRT-NODE-LAYERS-MIB';

/** ovirtNodeLayersMIB: enterprises.redhat(2312).ovirt(13).node-layers(2). */
export const ROOT: Oid = [1, 3, 6, 1, 4, 1, 2312, 13, 2];

const at = (...subids: number[]): Oid => [...ROOT, ...subids];

/** Scalars (object OIDs; the instance is OID.0). */
export const SCALARS = {
  ovnDaemonReachable: at(1, 1, 1),
  ovnDaemonVersion: at(1, 1, 2),
  ovnCurrentLayer: at(1, 1, 3),
  ovnDefaultLayer: at(1, 1, 4),
  ovnHealthStatus: at(1, 1, 5),
  ovnLayerCount: at(1, 1, 6),
  ovnAutomaticUpdatePolicy: at(1, 1, 7),
  ovnTrialLayer: at(1, 1, 8),

  ovnPoolSize: at(1, 2, 1),
  ovnPoolFree: at(1, 2, 2),
  ovnPoolDataPercent: at(1, 2, 3),
  ovnPoolMetadataPercent: at(1, 2, 4),
  ovnPoolAutoextendThreshold: at(1, 2, 5),
  ovnPoolUsageThreshold: at(1, 2, 6),

  ovnUpdateAvailable: at(1, 3, 1),
  ovnUpdateAvailableVersion: at(1, 3, 2),

  ovnActiveTxId: at(1, 4, 1),
  ovnActiveTxKind: at(1, 4, 2),
  ovnActiveTxPercent: at(1, 4, 3),
  ovnActiveTxStep: at(1, 4, 4),

  ovnLastTxId: at(1, 5, 1),
  ovnLastTxKind: at(1, 5, 2),
  ovnLastTxResult: at(1, 5, 3),
  ovnLastTxFinishedAt: at(1, 5, 4),
  ovnLastTxFinishedEpoch: at(1, 5, 5),
  ovnLastTxErrorName: at(1, 5, 6),
  ovnLastTxErrorMessage: at(1, 5, 7),
} as const satisfies Record<string, Oid>;
export type ScalarName = keyof typeof SCALARS;

export const LAYER_TABLE: Oid = at(1, 6);
/** ovnLayerEntry: rows are LAYER_ENTRY.<column>.<ovnLayerIndex>. */
export const LAYER_ENTRY: Oid = at(1, 6, 1);
/** Column numbers of ovnLayerEntry (ovnLayerIndex, 1, is not-accessible: the index only). */
export const LAYER_COLUMNS = {
  ovnLayerName: 2,
  ovnLayerKind: 3,
  ovnLayerBase: 4,
  ovnLayerCurrent: 5,
  ovnLayerDefault: 6,
  ovnLayerPinned: 7,
  ovnLayerSize: 8,
  ovnLayerBootState: 9,
  ovnLayerBootStateReason: 10,
} as const;
export type LayerColumnName = keyof typeof LAYER_COLUMNS;
export const LAYER_INDEX_COLUMN = 1;

export const NOTIFICATIONS = {
  ovnUpgradeFinished: at(0, 1),
  ovnUpgradeFailed: at(0, 2),
  ovnHealthChanged: at(0, 3),
  ovnPoolUsageHigh: at(0, 4),
  ovnLayerBootFailed: at(0, 5),
} as const satisfies Record<string, Oid>;
export type NotificationName = keyof typeof NOTIFICATIONS;

/**
 * The objects each notification carries (its OBJECTS clause, in order): scalars (instance .0) or columns of
 * ovnLayerTable (instance .<ovnLayerIndex> of the row the notification is about).
 */
export const NOTIFICATION_OBJECTS: Readonly<Record<NotificationName, ReadonlyArray<ScalarName | LayerColumnName>>> = {
  ovnUpgradeFinished: ['ovnLastTxId', 'ovnLastTxKind', 'ovnDefaultLayer', 'ovnCurrentLayer'],
  ovnUpgradeFailed: ['ovnLastTxId', 'ovnLastTxResult', 'ovnLastTxErrorName', 'ovnLastTxErrorMessage'],
  ovnHealthChanged: ['ovnHealthStatus'],
  ovnPoolUsageHigh: ['ovnPoolDataPercent', 'ovnPoolMetadataPercent', 'ovnPoolUsageThreshold'],
  ovnLayerBootFailed: ['ovnLayerName', 'ovnLayerBootStateReason', 'ovnCurrentLayer', 'ovnDefaultLayer'],
};

/** Enumerations (INTEGER { … }) as the MIB numbers them. */
export const HEALTH = { ok: 1, warn: 2, failed: 3, unknown: 4 } as const;
export const UPDATE_POLICY = { none: 1, check: 2, stage: 3, apply: 4, unknown: 5 } as const;
export const TX_RESULT = { none: 1, succeeded: 2, failed: 3, cancelled: 4, other: 5 } as const;
export const TRUTH = { true: 1, false: 2 } as const;
/** OvnBootState: the boot assessment of a layer (D-Bus "boot-state" "" / trial / good / bad; anything else other). */
export const BOOT_STATE = { notAssessed: 1, trial: 2, good: 3, bad: 4, other: 5 } as const;

/** SNMPv2-MIB objects every notification starts with. */
export const SYS_UPTIME_0: Oid = [1, 3, 6, 1, 2, 1, 1, 3, 0];
export const SNMP_TRAP_OID_0: Oid = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
