#!/usr/bin/env python3
"""Regenerates the two data files of the protobuf decoder.

1. `kubernetes.fds`: a FileDescriptorSet compiled from the `generated.proto` files that the
   `k8s-rs-pb` crate (crates.io) ships for one Kubernetes minor version. Its Rust bindings
   are not used (their reflection deadlocks on self-referencing dependencies), only the
   .proto files it carries.
2. `field_notes.txt`: what the .proto files cannot say about the JSON form, one
   `NOTE proto.package.Message.field` a line, where NOTE is
   - `pointer`: the Go field is a pointer. Go's protobuf encoding writes non-pointer scalars
     even when zero, so the wire cannot tell an explicit `replicas: 0` from an unset
     `minReadySeconds`; this note can.
   - `always`: the JSON tag has no `omitempty`, so encoding/json writes the field even when
     zero (`"disruptionsAllowed": 0`), or `null` for a nil slice or map.
   - `inline`: the Go field is embedded with `json:",inline"` (`Probe.handler`,
     `ConfigMapKeySelector.localObjectReference`): its fields belong to the parent object.
   - `json=NAME`: the JSON name differs from the protobuf field name.
   Besides, `order proto.package.Message f1,f2,…` gives the Go struct's field order (which
   encoding/json follows) where it differs from the field-number order of the .proto.
   It is derived from the struct definitions (field types, `json:` and `protobuf:` tags) of
   the k8s.io/api and k8s.io/apimachinery Go modules at the matching tag.

Usage (needs `pip install grpcio-tools` for protoc, and git clones of kubernetes/api and
kubernetes/apimachinery):

    cargo info k8s-rs-pb@0.5.0            # puts the crate's source in ~/.cargo/registry/src
    python3 generate.py --minor 33 --crate-src ~/.cargo/registry/src/*/k8s-rs-pb-0.5.0 \
        --api-git PATH/api --apimachinery-git PATH/apimachinery
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_descriptors(proto_root, out):
    protos = []
    for dirpath, _, files in os.walk(proto_root):
        if "generated.proto" in files:
            protos.append(os.path.relpath(os.path.join(dirpath, "generated.proto"), proto_root))
    protos.sort()
    # protoc drops comments (source_code_info) unless asked to keep them.
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", proto_root,
                    "--include_imports", "-o", out] + protos, check=True, stderr=subprocess.DEVNULL)
    return protos


STRUCT_RE = re.compile(r"^type (\w+) struct \{")
FIELD_RE = re.compile(r"^\s+(?:\w+\s+)?([^\s`]+)\s+`json:\"([^\"]*)\"[^`]*protobuf:\"([^\"]*)\"")


def field_notes(git_dir, tag, prefix, proto_package_of):
    """Yields `NOTE proto.package.Message.field` lines for the Go structs of one module."""
    files = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", tag],
                           check=True, capture_output=True, text=True).stdout.split()
    dirs = {os.path.dirname(f) for f in files if f.endswith("generated.proto")}
    for f in files:
        d = os.path.dirname(f)
        if d not in dirs or not f.endswith(".go") or f.endswith("_test.go") or "zz_generated" in f:
            continue
        if f.endswith("generated.pb.go"):
            continue
        src = subprocess.run(["git", "--git-dir", git_dir, "show", f"{tag}:{f}"],
                             check=True, capture_output=True, text=True).stdout
        struct = None
        order = []  # (field number, proto name) in Go order
        for line in src.splitlines():
            m = STRUCT_RE.match(line)
            if m:
                struct, order = m.group(1), []
                continue
            if line.startswith("}"):
                if struct and [n for n, _ in order] != sorted(n for n, _ in order):
                    names = ",".join(name for _, name in order)
                    yield f"order {proto_package_of(prefix + d)}.{struct} {names}"
                struct = None
                continue
            m = FIELD_RE.match(line)
            if not (struct and m):
                continue
            go_type, json_tag, proto_tag = m.groups()
            json_name, *json_options = json_tag.split(",")
            name = re.search(r"name=(\w+)", proto_tag)
            # An embedded struct whose tag has no name is named after its type.
            embedded = go_type.lstrip("*").split(".")[-1]
            proto_name = name.group(1) if name else embedded[0].lower() + embedded[1:]
            field = f"{proto_package_of(prefix + d)}.{struct}.{proto_name}"
            order.append((int(proto_tag.split(",")[1]), proto_name))
            if go_type.startswith("*"):
                yield f"pointer {field}"
            if json_name == "":
                yield f"inline {field}"
                continue
            if "omitempty" not in json_options and json_name != "-":
                yield f"always {field}"
            elif json_name != proto_name and json_name != "-":
                yield f"json={json_name} {field}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minor", required=True)
    ap.add_argument("--crate-src", required=True)
    ap.add_argument("--api-git", required=True)
    ap.add_argument("--apimachinery-git", required=True)
    args = ap.parse_args()
    proto_root = os.path.join(args.crate_src, "src", f"v1_{args.minor}")
    compile_descriptors(proto_root, os.path.join(HERE, "kubernetes.fds"))

    tag = max((t for t in subprocess.run(["git", "--git-dir", args.api_git, "tag"], check=True,
                                          capture_output=True, text=True).stdout.split()
               if re.fullmatch(rf"v0\.{args.minor}\.\d+", t)), key=lambda t: int(t.split(".")[2]))
    # k8s-rs-pb names packages after the module path: k8s.io/api/apps/v1 -> api.apps.v1,
    # k8s.io/apimachinery/pkg/apis/meta/v1 -> apimachinery.pkg.apis.meta.v1.
    to_package = lambda path: path.replace("/", ".")
    notes = set(field_notes(args.api_git, tag, "api/", to_package))
    notes |= set(field_notes(args.apimachinery_git, tag, "apimachinery/", to_package))
    with open(os.path.join(HERE, "field_notes.txt"), "w") as out:
        out.write(f"# k8s.io/api and k8s.io/apimachinery {tag}; generated by generate.py\n")
        for note in sorted(notes, key=lambda n: (n.split()[1], n)):
            out.write(note + "\n")
    print(f"{tag}: {len(notes)} field notes")


if __name__ == "__main__":
    main()
