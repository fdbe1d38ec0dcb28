/**
 * A real cockpit-ws serving the page without login, for the Cockpit tests: the starter shared with the sandbox demo
 * (src/sandbox/cockpit-ws.ts): `cockpit-ws --no-tls --address 127.0.0.1 --port P --local-session=cockpit-bridge`
 * under dbus-run-session, with DBUS_SYSTEM_BUS_ADDRESS at the private bus and XDG_DATA_DIRS at the directory holding
 * cockpit/ovirt-node, in its own process group that stop() signals by its id (-pgid): only what it started.
 */
export { COCKPIT_WS, CockpitWs } from '../../src/sandbox/cockpit-ws';
export type { CockpitWsOptions } from '../../src/sandbox/cockpit-ws';
