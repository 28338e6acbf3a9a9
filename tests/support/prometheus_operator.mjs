// Validate the Prometheus Operator's kinds in YAML files with @kubernetes-models/prometheus-operator
// (VALIDATORS.md): `new ServiceMonitor(doc).validate()` and the like, the YAML read by js-yaml.
// Copied next to its node_modules by tests/support/validators.py; run as
//   node prometheus_operator.mjs FILE...
// Prints one line per object ("ok KIND/NAME", "FAIL KIND/NAME: why", "skip KIND/NAME" for
// another kind) and exits 1 if any failed.
import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { AlertmanagerConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/AlertmanagerConfig";

const MODELS = {
  "monitoring.coreos.com/v1 ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1 PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1 PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1alpha1 AlertmanagerConfig": AlertmanagerConfig,
};

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of loadAll(readFileSync(file, "utf8"))) {
    if (!doc) continue;
    const name = `${doc.kind}/${doc.metadata?.name}`;
    const Model = MODELS[`${doc.apiVersion} ${doc.kind}`];
    if (!Model) {
      console.log(`skip ${name}`);
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`ok ${name}`);
    } catch (error) {
      failed += 1;
      const details = (error.errors || []).map((e) => `${e.instancePath} ${e.message}`).join("; ");
      console.log(`FAIL ${name}: ${error.message}${details ? ` (${details})` : ""}`);
    }
  }
}
process.exit(failed ? 1 : 0);
