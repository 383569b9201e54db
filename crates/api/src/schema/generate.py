#!/usr/bin/env python3
"""Generate `definitions.json.gz`: the upstream Kubernetes v1.33 OpenAPI definitions of every
type reachable from the kinds k8rs serves, in OpenAPI v3 form (as upstream's
`/openapi/v3/...` documents spell them).

Source: the PyPI package `kubernetes-validate` 1.37.0, which ships upstream's schemas with
descriptions and the strategic-merge/apply extensions that k8s-openapi drops
(`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
`x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, `x-kubernetes-group-version-kind`).
It stores them as JSON Schema 2020-12 (`kubernetes-json-schema/v1.33.0-local/_definitions.json`);
this script turns them back into upstream's OpenAPI v3 shape:
  * `"type": ["string", "null"]` becomes `"type": "string"`;
  * `$ref: "#/$defs/X"` becomes `#/components/schemas/X`, wrapped in `allOf: [{$ref}]` when the
    node has other keys (a description), exactly like upstream's v3 documents;
  * the `enum` that kubernetes-validate adds to `apiVersion`/`kind` is removed;
  * IntOrString and Quantity (turned into `oneOf` there) get upstream's definitions back
    (`type: string`, `format: int-or-string`, with descriptions read from k8s-openapi's docs).

Run from the repository root (needs network for pip, and k8s-openapi 0.29 in the cargo registry):
    python3 crates/api/src/schema/generate.py
or with an already unpacked wheel:
    python3 crates/api/src/schema/generate.py --wheel-dir /tmp/kv/whl
"""

import argparse
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "kubernetes-validate==1.37.0"
K8S_VERSION = "v1.33.0"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "definitions.json.gz")

# (group, version) pairs whose kinds k8rs serves; their definitions and everything they
# reference are kept.
SERVED = {
    ("", "v1"),
    ("apps", "v1"),
    ("batch", "v1"),
    ("autoscaling", "v1"),
    ("autoscaling", "v2"),
    ("policy", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
    ("discovery.k8s.io", "v1"),
    ("scheduling.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
    ("node.k8s.io", "v1"),
    ("authentication.k8s.io", "v1"),
    ("authorization.k8s.io", "v1"),
    ("apiextensions.k8s.io", "v1"),
}
# Non-kind definitions that the API server's documents reference (discovery, version, patch
# bodies): every apimachinery type.
ALWAYS_PREFIXES = ("io.k8s.apimachinery.",)

LOCAL_REF = "#/$defs/"
V3_REF = "#/components/schemas/"


def unpack_wheel(dest):
    subprocess.check_call(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dest, PACKAGE]
    )
    (wheel,) = glob.glob(os.path.join(dest, "kubernetes_validate-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extractall(os.path.join(dest, "whl"))
    return os.path.join(dest, "whl")


def k8s_openapi_doc(rel):
    """Upstream description of a type, from the doc comment k8s-openapi generated from it."""
    pattern = os.path.expanduser(
        f"~/.cargo/registry/src/*/k8s-openapi-0.29.*/src/v1_33/{rel}"
    )
    (path,) = glob.glob(pattern)[:1]
    lines = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("///"):
            lines.append(line[3:].removeprefix(" ").rstrip("\n"))
        elif lines:
            break
    text = "\n".join(lines)
    return re.sub(r"\\([<>\[\]_*])", r"\1", text)


def normalize(node, prop_name=None):
    """JSON Schema 2020-12 node -> upstream OpenAPI v3 node."""
    if isinstance(node, list):
        return [normalize(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            value = next(t for t in value if t != "null")
        elif key == "$ref":
            value = V3_REF + value.removeprefix(LOCAL_REF)
        elif key == "enum" and prop_name in ("apiVersion", "kind"):
            continue
        elif key == "properties":
            value = {name: normalize(p, name) for name, p in value.items()}
        elif key in ("x-kubernetes-group-version-kind", "required", "x-kubernetes-list-map-keys"):
            pass
        else:
            value = normalize(value)
        out[key] = value
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return dict(sorted(out.items()))


def refs(node, acc):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                acc.add(value.removeprefix(V3_REF))
            elif key == "properties":  # names, not keywords: JSONSchemaProps has a `$ref` field
                for prop in value.values():
                    refs(prop, acc)
            else:
                refs(value, acc)
    elif isinstance(node, list):
        for x in node:
            refs(x, acc)
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel-dir", help="an unpacked kubernetes-validate wheel")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = args.wheel_dir or unpack_wheel(tmp)
        src = os.path.join(
            wheel_dir, "kubernetes_validate", "kubernetes-json-schema",
            f"{K8S_VERSION}-local", "_definitions.json",
        )
        with open(src, encoding="utf-8") as f:
            raw = json.load(f)["$defs"]

    defs = {name: normalize(schema) for name, schema in raw.items()}
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
        "description": k8s_openapi_doc("apimachinery/pkg/util/intstr/int_or_string.rs"),
        "format": "int-or-string",
        "type": "string",
    }
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
        "description": k8s_openapi_doc("apimachinery/pkg/api/resource/quantity.rs"),
        "type": "string",
    }

    def served(schema):
        return any(
            (gvk["group"], gvk["version"]) in SERVED
            for gvk in schema.get("x-kubernetes-group-version-kind", [])
        )

    todo = [n for n, s in defs.items() if served(s) or n.startswith(ALWAYS_PREFIXES)]
    keep = set()
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        todo.extend(refs(defs[name], set()) - keep)

    out = {name: defs[name] for name in sorted(keep)}
    data = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # mtime=0: the committed file only changes when its content does.
    with open(OUT, "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{len(out)} definitions, {len(data)} bytes JSON, {os.path.getsize(OUT)} bytes gzip -> {OUT}")


if __name__ == "__main__":
    main()
