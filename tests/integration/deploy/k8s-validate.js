#!/usr/bin/env node
// Validates Kubernetes manifests (multi-document YAML, e.g. `helm template`
// output) against the Kubernetes 1.31 API schemas, strictly: unknown fields,
// missing required fields and wrong types are errors, as with
// `kubectl --validate=strict` or kubeconform -strict.
//
// Where the schemas come from: no npm package ships the 1.31 OpenAPI
// document itself, but cdk8s-plus-31 ships its import of it (the package
// says "Kubernetes 1.31.0") as a jsii type assembly (.jsii): one type per
// OpenAPI definition, tagged with the definition's name, and one property per
// field, tagged "definition#jsonField", with its type and whether it is
// optional. This script turns that assembly into JSON Schema (draft-07) and
// validates with Ajv. It holds no knowledge of any Kubernetes kind; the
// apiVersion/kind of each top-level type comes from the package's GVK table.
//
// Usage: k8s-validate.js TOOLS_DIR FILE.yaml...   (TOOLS_DIR holds node_modules)
// Exit: 0 all valid, 1 some document invalid or of an unknown kind, 2 usage.
'use strict';

const fs = require('fs');
const path = require('path');

if (process.argv.length < 4) {
  process.stderr.write('usage: k8s-validate.js TOOLS_DIR FILE.yaml...\n');
  process.exit(2);
}
const tools = path.resolve(process.argv[2]);
const files = process.argv.slice(3);
const req = (m) => require(require.resolve(m, { paths: [tools] }));
const Ajv = req('ajv');
const YAML = req('yaml');

const pkgDir = path.dirname(require.resolve('cdk8s-plus-31/package.json', { paths: [tools] }));
const assembly = JSON.parse(fs.readFileSync(path.join(pkgDir, '.jsii'), 'utf8'));
const k8sJs = fs.readFileSync(path.join(pkgDir, 'lib', 'imports', 'k8s.js'), 'utf8');
const pkgVersion = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).description;
const m = /Kubernetes (\d+\.\d+\.\d+)/.exec(pkgVersion || '');
const k8sVersion = m ? m[1] : 'unknown';
if (!k8sVersion.startsWith('1.31.')) {
  process.stderr.write(`k8s-validate: cdk8s-plus-31 describes Kubernetes ${k8sVersion}, not 1.31\n`);
  process.exit(2);
}

const prefix = 'cdk8s-plus-31.k8s.';
const types = assembly.types;
const defName = (fqn) => fqn.slice(prefix.length);

function typeSchema(t) {
  if (t.primitive) {
    switch (t.primitive) {
      case 'string': return { type: 'string' };
      case 'number': return { type: 'number' };
      case 'boolean': return { type: 'boolean' };
      case 'date': return { type: 'string' };
      case 'any': case 'json': return {};
      default: throw new Error(`unhandled primitive ${t.primitive}`);
    }
  }
  if (t.collection) {
    const items = typeSchema(t.collection.elementtype);
    if (t.collection.kind === 'array') return { type: 'array', items };
    return { type: 'object', additionalProperties: items };
  }
  if (t.union) return { anyOf: t.union.types.map(typeSchema) };
  if (t.fqn) {
    if (!t.fqn.startsWith(prefix)) return {};
    return { $ref: `#/definitions/${defName(t.fqn)}` };
  }
  throw new Error(`unhandled type ${JSON.stringify(t)}`);
}

// The two value classes of the import: OpenAPI's int-or-string and quantity.
const definitions = {
  IntOrString: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
  Quantity: { anyOf: [{ type: 'string' }, { type: 'number' }] },
};
for (const [fqn, t] of Object.entries(types)) {
  if (!fqn.startsWith(prefix)) continue;
  const name = defName(fqn);
  if (t.kind === 'enum') {
    definitions[name] = { type: 'string' };
  } else if (t.kind === 'interface') {
    const properties = {};
    const required = [];
    for (const p of t.properties || []) {
      const tag = ((p.docs || {}).custom || {}).schema || '';
      const json = tag.includes('#') ? tag.slice(tag.indexOf('#') + 1) : p.name;
      properties[json] = typeSchema(p.type);
      if (!p.optional) required.push(json);
    }
    definitions[name] = { type: 'object', properties, required, additionalProperties: false };
  } else if (!definitions[name]) {
    definitions[name] = {};
  }
}

// apiVersion/kind of each top-level object: `KubeX.GVK = { apiVersion, kind }`;
// its fields are those of the interface KubeXProps.
const kinds = new Map();
const gvkRe = /(Kube\w+)\.GVK = \{\s*apiVersion: '([^']+)',\s*kind: '([^']+)',?\s*\}/g;
for (let g; (g = gvkRe.exec(k8sJs)) !== null;) {
  const props = `${g[1]}Props`;
  if (!definitions[props]) continue;
  const top = JSON.parse(JSON.stringify(definitions[props]));
  top.properties.apiVersion = { const: g[2] };
  top.properties.kind = { const: g[3] };
  top.required = [...new Set([...top.required, 'apiVersion', 'kind'])];
  kinds.set(`${g[2]}/${g[3]}`, top);
}
if (kinds.size < 50) {
  process.stderr.write(`k8s-validate: only ${kinds.size} kinds found in cdk8s-plus-31: format changed?\n`);
  process.exit(2);
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map();
function validatorFor(key) {
  if (!validators.has(key)) {
    validators.set(key, ajv.compile({ ...kinds.get(key), definitions }));
  }
  return validators.get(key);
}

let bad = 0;
let n = 0;
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  for (const doc of docs) {
    if (doc.errors.length) {
      process.stdout.write(`${file}: YAML error: ${doc.errors[0].message}\n`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    n++;
    const key = `${obj.apiVersion}/${obj.kind}`;
    const what = `${obj.kind}/${(obj.metadata || {}).name || '?'}`;
    if (!kinds.has(key)) {
      process.stdout.write(`${file}: ${what}: no Kubernetes ${k8sVersion} schema for ${key}\n`);
      bad++;
      continue;
    }
    const validate = validatorFor(key);
    if (validate(obj)) {
      process.stdout.write(`${file}: ${what}: valid (${key}, Kubernetes ${k8sVersion})\n`);
    } else {
      bad++;
      for (const e of validate.errors) {
        const extra = e.params && e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : '';
        process.stdout.write(`${file}: ${what}: ${e.instancePath || '/'}: ${e.message}${extra}\n`);
      }
    }
  }
}
process.stdout.write(`k8s-validate: ${n} object(s), ${bad} invalid, against Kubernetes ${k8sVersion}\n`);
process.exit(bad ? 1 : 0);
