// Prints the spec of the PrometheusRule in a rendered manifest as a plain Prometheus rules file
// (the `groups:` document promtool and rule_files take). Usage: node extract-rules.cjs FILE.yaml
'use strict';
const fs = require('fs');
const yaml = require('js-yaml');
const docs = yaml.loadAll(fs.readFileSync(process.argv[2], 'utf8')).filter(
  (d) => d && d.kind === 'PrometheusRule');
if (docs.length !== 1) {
  console.error(`extract-rules: want exactly one PrometheusRule, found ${docs.length}`);
  process.exit(1);
}
process.stdout.write('# Rendered from deploy/helm/tapio (templates/_rules.tpl) by ' +
  'scripts/render-manifests.sh; do not edit.\n');
process.stdout.write(yaml.dump(docs[0].spec, {lineWidth: 120, noRefs: true}));
