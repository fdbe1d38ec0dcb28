/**
 * Transpile one self-contained source module (type-only imports aside) to CommonJS in a temp dir, so a child
 * node process can require() the current source without a full build of dist/.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import ts from 'typescript';

export const REPO = path.resolve(__dirname, '../..');

/** Writes `<dir>/<basename>.js`; returns its path. The child needs NODE_PATH=REPO/node_modules for its packages. */
export async function transpileTo(dir: string, sourceRel: string): Promise<string> {
  const source = await fs.readFile(path.join(REPO, sourceRel), 'utf8');
  const out = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: sourceRel,
  });
  const file = path.join(dir, path.basename(sourceRel).replace(/\.ts$/, '.js'));
  await fs.writeFile(file, out.outputText);
  return file;
}
