// Validates every object of rendered manifests against the Kubernetes (and Prometheus Operator)
// JSON schemas from the npm packages kubernetes-models and @kubernetes-models/prometheus-operator,
// then checks the DaemonSet's least-privilege contract (docs/requirements.md).
// Usage: TAPIO_NODE_MODULES=<tools>/node/node_modules node validate.mjs FILE.yaml...
// Exit status 0 when every object is valid; 1 with one line per problem otherwise.
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import {pathToFileURL} from 'node:url';

const modules = process.env.TAPIO_NODE_MODULES;
if (!modules) {
  console.error('validate: set TAPIO_NODE_MODULES to the tools node_modules dir');
  process.exit(2);
}
const require = createRequire(path.join(modules, 'noop.js'));
const yaml = require('js-yaml');

// kubernetes-models is CommonJS; @kubernetes-models/prometheus-operator ships ES modules only,
// imported here by file path.
async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') {
    const file = path.join(modules, '@kubernetes-models/prometheus-operator', group, version,
                           `${kind}.js`);
    if (!fs.existsSync(file)) return null;
    return (await import(pathToFileURL(file).href))[kind] || null;
  }
  try {
    return require(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`)[kind] || null;
  } catch (e) {
    if (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return null;
    throw e;
  }
}

// The agent's container must stay unprivileged with exactly the capabilities the chart justifies.
function checkDaemonSet(ds, problems, where) {
  const allowed = new Set(['BPF', 'PERFMON', 'SYS_ADMIN', 'SYS_RESOURCE', 'SYSLOG', 'SYS_PTRACE',
    'DAC_READ_SEARCH']);
  const spec = ds.spec.template.spec;
  if (!spec.tolerations || !spec.tolerations.some((t) => t.operator === 'Exists' && !t.key)) {
    problems.push(`${where}: no toleration for every taint`);
  }
  for (const c of spec.containers) {
    const sc = c.securityContext || {};
    const at = `${where} container ${c.name}`;
    if (sc.privileged !== false) problems.push(`${at}: securityContext.privileged must be false`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem must be true`);
    const caps = sc.capabilities || {};
    if (!(caps.drop || []).includes('ALL')) problems.push(`${at}: capabilities.drop must include ALL`);
    for (const cap of caps.add || []) {
      if (!allowed.has(cap)) problems.push(`${at}: capability ${cap} is not one the chart justifies`);
    }
    for (const probe of ['livenessProbe', 'readinessProbe']) {
      if (!c[probe] || !c[probe].grpc) problems.push(`${at}: ${probe} must be a gRPC probe`);
    }
    if (!c.resources || !c.resources.requests || !c.resources.limits) {
      problems.push(`${at}: requests and limits must be set`);
    }
    for (const m of c.volumeMounts || []) {
      const vol = spec.volumes.find((v) => v.name === m.name);
      const mustBeRo = ['/sys/fs/cgroup', '/host/proc', '/sys/kernel/tracing'];
      if (mustBeRo.includes(m.mountPath) && m.readOnly !== true) {
        problems.push(`${at}: ${m.mountPath} must be mounted read-only`);
      }
      if (!vol) problems.push(`${at}: volumeMount ${m.name} has no volume`);
    }
  }
}

const problems = [];
let count = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${file}: YAML parse error: ${e.message}`);
    continue;
  }
  for (const obj of docs) {
    if (obj === null || obj === undefined) continue;
    const where = `${file}: ${obj.kind || '?'} ${(obj.metadata && obj.metadata.name) || '?'}`;
    if (!obj.apiVersion || !obj.kind) {
      problems.push(`${where}: missing apiVersion or kind`);
      continue;
    }
    const Model = await modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      problems.push(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
    }
    if (obj.kind === 'DaemonSet') checkDaemonSet(obj, problems, where);
    count++;
  }
}
if (count === 0) problems.push('no objects found');
for (const p of problems) console.error(`validate: ${p}`);
if (problems.length === 0) console.log(`validate: ${count} objects valid`);
process.exit(problems.length === 0 ? 0 : 1);
