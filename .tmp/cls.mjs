import { classify } from '../dist/vertex/classify.js';
import { OPERATION_BINDINGS } from '../dist/vertex/operations.js';
const reqs = OPERATION_BINDINGS.flatMap(b => b.versions.map(v => { const r = b.resource.replace(/\{([a-zA-Z]+)\}/g, (_, n) => n==='project'?'p':n==='location'?'us-central1':`${n}-1234567890`); return [b.spec.httpMethod, `/${v}${r===''?'':'/'}${r}${b.suffix?'/'+b.suffix:''}${b.verb?':'+b.verb:''}`]; }));
const predict = [['POST','/v1/projects/p/locations/us-central1/endpoints/1234567890:predict']];
function t(list, n) { let x=0; const t0=process.hrtime.bigint(); for (let i=0;i<n;i++){ const [m,u]=list[i%list.length]; x+=classify(m,u).resource.length;} return Number(process.hrtime.bigint()-t0)/1000/n; }
for (let k=0;k<3;k++){ console.log('all', t(reqs, 300000).toFixed(3), 'predict', t(predict, 300000).toFixed(3)); }
