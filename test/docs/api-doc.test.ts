/** docs/API.md quotes the shipped interface file; this keeps the quote from drifting. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');

it('docs/API.md quotes dbus/org.ovirt.Node.Layers.xml verbatim', async () => {
  const xml = await fs.readFile(path.join(root, 'dbus/org.ovirt.Node.Layers.xml'), 'utf8');
  const doc = await fs.readFile(path.join(root, 'docs/API.md'), 'utf8');
  const m = /```xml\n([\s\S]*?)```/.exec(doc);
  expect(m?.[1]).toBe(xml);
});
