/**
 * Validates Kubernetes objects (rendered chart templates, example manifests)
 * against the Kubernetes API schemas, with the `kubernetes-models` packages'
 * `validate()`. An object of a kind no package models is an error, not a pass.
 * Note: those schemas check types, required fields and formats, not unknown
 * field names; tests assert the fields that matter by path.
 */
import { parseAllDocuments } from 'yaml';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

type ModelClass = new (data: unknown) => { validate(): void };

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const module: Record<string, unknown> = apiVersion.startsWith('monitoring.coreos.com/')
    ? ((await import(`@kubernetes-models/prometheus-operator/${apiVersion}`)) as Record<string, unknown>)
    : ((await import(`kubernetes-models/${apiVersion}`).catch(() => ({}))) as Record<string, unknown>);
  const model = module[kind];
  if (typeof model !== 'function') throw new Error(`no Kubernetes schema for ${apiVersion} ${kind}`);
  return model as ModelClass;
}

/** Throws with every object's problems (kind/name: message) when any object is invalid. */
export async function validateKubeObjects(objects: readonly KubeObject[]): Promise<void> {
  const problems: string[] = [];
  for (const object of objects) {
    try {
      if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') throw new Error('apiVersion and kind are required');
      const Model = await modelFor(object.apiVersion, object.kind);
      new Model(object).validate();
    } catch (error) {
      problems.push(`${object.kind ?? '?'}/${object.metadata?.name ?? '?'}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`invalid Kubernetes objects:\n${problems.join('\n')}`);
}

/** Every non-empty document of a multi-document YAML text. */
export function parseKubeYaml(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as KubeObject | null;
    })
    .filter((o): o is KubeObject => o !== null && typeof o === 'object');
}
