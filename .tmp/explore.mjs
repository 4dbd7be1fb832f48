import protobuf from 'protobufjs';
import fs from 'node:fs';
const base = 'node_modules/@google-cloud/aiplatform/build/protos/google/cloud/aiplatform';
for (const v of ['v1','v1beta1']) {
  const files = fs.readdirSync(`${base}/${v}`).filter(f => f.endsWith('.proto')).sort();
  let rpcs=0, scoped=0, bindings=[], nonscoped=0;
  for (const f of files) {
    const src = fs.readFileSync(`${base}/${v}/${f}`, 'utf8');
    const res = protobuf.parse(src, { keepCase: true });
    const visit = (ns) => { for (const o of ns.nestedArray ?? []) { if (o instanceof protobuf.Service) {
      for (const m of o.methodsArray) {
        rpcs++;
        const http = (m.parsedOptions ?? []).find(p => p['(google.api.http)'])?.['(google.api.http)'];
        if (!http) { console.log('NOHTTP', v, o.name, m.name); continue; }
        const all = [http, ...[http.additional_bindings ?? []].flat()];
        let sc=false;
        for (const b of all) { const meth = ['get','post','patch','delete','put'].find(k => b[k]); bindings.push([o.name, m.name, meth, b[meth], b.body, m.responseStream, m.responseType]); if (b[meth].includes('projects/*/locations/*')) sc=true; }
        if (sc) scoped++; else nonscoped++;
      }} else if (o.nestedArray) visit(o); } };
    visit(res.root);
  }
  console.log(v, 'rpcs', rpcs, 'scoped', scoped, 'nonscoped', nonscoped, 'bindings', bindings.length);
  fs.writeFileSync(`/tmp/w12/bindings-${v}.json`, JSON.stringify(bindings, null, 0).replace(/\],\[/g, '],\n['));
}
