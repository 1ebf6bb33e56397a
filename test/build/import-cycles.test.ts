/**
 * The modules under src/ import one another in one direction (issue 19): no module reaches
 * itself again through value imports, and the async machinery never imports the HTTP
 * application (`http/app.ts`), which imports every route and through them the async modules.
 * Type-only imports are erased by the compiler and are not followed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The sources: dist/test/build → ../../../src */
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Each source file's value imports of other source files (absolute .ts paths). */
function valueImports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (file.endsWith('.ts')) {
        const text = fs.readFileSync(file, 'utf8');
        const imports = [...text.matchAll(/^(?:import|export)\s+(?!type\s)([^'";]*?from\s+)?['"](\.[^'"]+)['"]/gm)]
          .filter((m) => !/^\{?\s*type\s/.test(m[1] ?? '') || /,\s*(?!type\s)\w/.test(m[1] ?? ''))
          .map((m) => path.resolve(path.dirname(file), m[2]!).replace(/\.js$/, '.ts'));
        graph.set(file, imports);
      }
    }
  };
  walk(SRC);
  return graph;
}

/** Every circle of value imports, as `a -> b -> … ` (relative to src/). */
function circles(graph: Map<string, string[]>): string[] {
  const found = new Set<string>();
  const done = new Set<string>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const at = stack.indexOf(next);
      if (at >= 0) found.add(stack.slice(at).map((f) => path.relative(SRC, f)).join(' -> '));
      else if (!done.has(next)) visit(next);
    }
    stack.pop();
    done.add(node);
  };
  for (const node of graph.keys()) if (!done.has(node)) visit(node);
  return [...found];
}

test('no module under src/ imports itself through a circle of value imports', () => {
  assert.deepEqual(circles(valueImports()), []);
});

test('the async modules never import the HTTP application', () => {
  const app = path.join(SRC, 'http', 'app.ts');
  const offenders = [...valueImports()]
    .filter(([file, imports]) => file.startsWith(path.join(SRC, 'async')) && imports.includes(app))
    .map(([file]) => path.relative(SRC, file));
  assert.deepEqual(offenders, []);
});
