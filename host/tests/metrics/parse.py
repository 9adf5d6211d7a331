"""Reads a Prometheus text exposition on stdin with prometheus_client's own parser (a parser
nobody on the team wrote) and prints every sample as JSON: {"name{k=\"v\",...}": value}, labels
sorted by name. A malformed exposition is an exception: a non-zero exit."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        samples[f"{sample.name}{{{labels}}}"] = sample.value
json.dump(samples, sys.stdout)
