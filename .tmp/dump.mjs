import { readProtoRpcs, readLroBindings } from '../dist-scripts/scripts/gen-operations.js';
import { deriveOperationTable } from '../dist-scripts/src/vertex/derive-operations.js';
const t = deriveOperationTable(readProtoRpcs(), readLroBindings());
for (const s of t.specs) {
  const bs = t.bindings.filter(b => b.spec === s);
  console.log([s.id, s.rpc, s.httpMethod, s.permission, s.permissionType, s.groups.join('+'), s.versions.join('+'), s.streaming?'S':'', s.longRunning?'LRO':'', bs.map(b=>b.resource.replace('projects/{project}/locations/{location}','LOC')+(b.suffix?'/'+b.suffix:'')+(b.verb?':'+b.verb:'')+(b.scopedForm!==undefined?'[X]':'')).join(' | ')].join('\t'));
}
console.log('specs', t.specs.length, 'bindings', t.bindings.length, 'grpcOnly', t.grpcOnly.length);
