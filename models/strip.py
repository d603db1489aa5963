"""Write a botocore service model with documentation stripped, for embedding in opsloop.

Usage: python3 models/strip.py <service> <version> <out.json>
Reads the model from the installed botocore (the AWS API model is opsloop's spec)."""
import gzip, json, os, sys

import botocore

def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in ("documentation", "documentationUrl", "examples")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node

service, version, out = sys.argv[1:4]
base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version)
path = os.path.join(base, "service-2.json")
data = json.load(gzip.open(path + ".gz")) if os.path.exists(path + ".gz") else json.load(open(path))
with open(out, "w") as f:
    json.dump(strip(data), f, separators=(",", ":"), sort_keys=True)
    f.write("\n")
