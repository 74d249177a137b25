#!/usr/bin/env python3
"""Makes an OCI image index inside an OCI layout from images already in it.
Usage: oci_index.py LAYOUT NEWTAG TAG:OS/ARCH [TAG:OS/ARCH...]
The index lists the manifests in the order given; index.json then holds only
NEWTAG (pointing at the index)."""
import hashlib, json, os, sys

layout, newtag, entries = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(os.path.join(layout, "index.json")) as f:
    top = json.load(f)
by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in top["manifests"]}
manifests = []
for e in entries:
    tag, plat = e.split(":")
    os_, arch = plat.split("/")
    m = dict(by_tag[tag])
    m.pop("annotations", None)
    m["platform"] = {"os": os_, "architecture": arch}
    manifests.append(m)
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": manifests}
data = json.dumps(index, separators=(",", ":")).encode()
digest = hashlib.sha256(data).hexdigest()
with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
    f.write(data)
top["manifests"] = [{"mediaType": index["mediaType"], "digest": "sha256:" + digest,
                     "size": len(data),
                     "annotations": {"org.opencontainers.image.ref.name": newtag}}]
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(top, f)
