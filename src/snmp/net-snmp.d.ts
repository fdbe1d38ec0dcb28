/**
 * The part of npm net-snmp 3.29 (no bundled types, no @types package installed) that this project uses: the SNMP
 * manager session (tests, bench), the MIB module store (the MIB test) and the AgentX PDU encoder (a cross-check of
 * our own codec). Typed from its index.js; `unknown` wherever the library does not promise a shape.
 */
declare module 'net-snmp' {
  export const Version1: 0;
  export const Version2c: 1;

  export const ObjectType: {
    readonly Boolean: 1;
    readonly Integer: 2;
    readonly OctetString: 4;
    readonly Null: 5;
    readonly OID: 6;
    readonly IpAddress: 64;
    readonly Counter: 65;
    readonly Gauge: 66;
    readonly TimeTicks: 67;
    readonly Opaque: 68;
    readonly Counter64: 70;
    readonly NoSuchObject: 128;
    readonly NoSuchInstance: 129;
    readonly EndOfMibView: 130;
  };

  export interface SessionVarbind {
    oid: string;
    type: number;
    /** number, Buffer (strings), string (OIDs), bigint-ish Buffer (Counter64) or null — check before use. */
    value: unknown;
  }

  export interface SessionOptions {
    port?: number;
    version?: 0 | 1;
    timeout?: number;
    retries?: number;
    transport?: 'udp4' | 'udp6';
    idBitsSize?: 16 | 32;
  }

  export interface Session {
    get(oids: string[], callback: (error: Error | null, varbinds?: SessionVarbind[]) => void): void;
    getNext(oids: string[], callback: (error: Error | null, varbinds?: SessionVarbind[]) => void): void;
    close(): void;
    on(event: 'error', listener: (error: Error) => void): this;
  }

  export function createSession(target: string, community: string, options?: SessionOptions): Session;
  export function isVarbindError(varbind: SessionVarbind): boolean;
  export function varbindError(varbind: SessionVarbind): string;

  export interface MibProvider {
    name: string;
    type: number;
    oid: string;
  }

  export interface ModuleStore {
    loadFromFile(fileName: string): void;
    getModule(moduleName: string): Record<string, unknown> | undefined;
    getModuleNames(includeBase?: boolean): string[];
    getProvidersForModule(moduleName: string): MibProvider[];
  }

  export function createModuleStore(): ModuleStore;

  export interface AgentXVarbindInput {
    oid: string;
    type: number;
    value: unknown;
  }

  export interface AgentXPduInstance {
    toBuffer(): Buffer;
  }

  export const AgentXPdu: {
    createFromVariables(vars: {
      pduType: number;
      sessionID?: number;
      transactionID?: number;
      packetID?: number;
      varbinds?: AgentXVarbindInput[];
      sysUpTime?: number;
      error?: number;
      index?: number;
    }): AgentXPduInstance;
  };
}
