// Writes crds/*.yaml (and the chart's copy), operator/src/api/types.generated.ts and docs/api.md
// from the API declaration.
import { writeFileSync } from 'node:fs';
import { crdFileName, renderApiDocs, renderCrdYaml, renderTypes } from '../operator/src/api/generate.ts';
import { kinds } from '../operator/src/api/schema.ts';

for (const kind of kinds) {
  writeFileSync(`crds/${crdFileName(kind)}`, renderCrdYaml(kind));
  // Helm installs the CRDs from the chart's crds/ directory: the same files.
  writeFileSync(`charts/mailfleet/crds/${crdFileName(kind)}`, renderCrdYaml(kind));
}
writeFileSync('operator/src/api/types.generated.ts', renderTypes(kinds));
writeFileSync('docs/api.md', renderApiDocs(kinds));
console.log(`wrote ${kinds.length} CRDs, operator/src/api/types.generated.ts and docs/api.md`);
