import { readFileSync } from 'fs';
import { join } from 'path';
import { generateApiDocs, packageRoot } from '../scripts/api-docs';

test('docs/API.md is what npm run docs:api generates from the props declarations', () => {
  const root = packageRoot();
  const committed = readFileSync(join(root, 'docs', 'API.md'), 'utf8');
  // On a failure run `npm run docs:api` and commit docs/API.md.
  expect(committed).toBe(generateApiDocs(root));
});
