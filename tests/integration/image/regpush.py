#!/usr/bin/env python3
"""Pushes a hand-made image to a registry over the distribution API, for the
bad-input tests. Usage:
  regpush.py URL REPO TAG KIND [args]
KINDs (each one image with a config and the layers described):
  tar NAME=SPEC...     one gzip layer with the entries given: SPEC is
                       file:CONTENT, dir, sym:TARGET, hard:TARGET
  truncated            a gzip layer cut in the middle (its digest is of the cut bytes)
  mediatype MT         a good layer announced with media type MT
  layers N             N layers: layer i adds l/<i> and l/w<i>, whites out l/w<i-1>
  random MB            one layer of MB megabytes of random bytes (gzip of random data)
REGPUSH_DIFF_ID in the environment replaces the config's diff_id (a lie).
Prints the manifest digest and the layer digest."""
import gzip, hashlib, io, json, os, sys, tarfile, urllib.request

url, repo, tag, kind, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]

def req(method, u, data=None, ctype=None):
    r = urllib.request.Request(u, data=data, method=method)
    if ctype:
        r.add_header("Content-Type", ctype)
    return urllib.request.urlopen(r)

def push_blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", f"{url}/v2/{repo}/blobs/uploads/").headers["Location"]
    if loc.startswith("/"):
        loc = url + loc
    sep = "&" if "?" in loc else "?"
    req("PUT", f"{loc}{sep}digest={d}", data, "application/octet-stream")
    return d

def tar_of(specs):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for s in specs:
            name, _, spec = s.partition("=")
            kind_, _, val = spec.partition(":")
            ti = tarfile.TarInfo(name)
            if kind_ == "file":
                ti.size = len(val)
                t.addfile(ti, io.BytesIO(val.encode()))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind_]
            if kind_ == "dir":
                ti.mode = 0o755
            ti.linkname = val
            t.addfile(ti)
    return b.getvalue()

layer_mt = "application/vnd.oci.image.layer.v1.tar+gzip"
if kind == "layers":
    # N layers; layer i adds /l/<i> and whites out /l/<i-1>'s sibling w<i-1>
    raws = []
    for i in range(int(args[0])):
        specs = ["l=dir", f"l/{i}=file:{i}", f"l/w{i}=file:w"]
        if i:
            specs.append(f"l/.wh.w{i-1}=file:")
        raws.append(tar_of(specs))
    layers = [gzip.compress(r, mtime=0) for r in raws]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(r).hexdigest() for r in raws]}}).encode()
    cd = push_blob(config)
    descs = [{"mediaType": layer_mt, "digest": push_blob(l), "size": len(l)} for l in layers]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cd, "size": len(config)}, "layers": descs}).encode()
    req("PUT", f"{url}/v2/{repo}/manifests/{tag}", manifest, "application/vnd.oci.image.manifest.v1+json")
    print("sha256:" + hashlib.sha256(manifest).hexdigest())
    sys.exit(0)
if kind == "tar":
    raw = tar_of(args)
    layer = gzip.compress(raw, mtime=0)
elif kind == "truncated":
    raw = tar_of([f"f{i}=file:" + os.urandom(6000).hex() for i in range(40)])
    full = gzip.compress(raw)
    layer = full[: len(full) // 2]
elif kind == "mediatype":
    raw = tar_of(["a=file:a"])
    layer = gzip.compress(raw, mtime=0)
    layer_mt = args[0]
elif kind == "random":
    data = os.urandom(int(args[0]) * 1024 * 1024)
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        ti = tarfile.TarInfo("random.bin")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    raw = b.getvalue()
    layer = gzip.compress(raw, compresslevel=1)
else:
    sys.exit("unknown kind " + kind)

diff_id = os.environ.get("REGPUSH_DIFF_ID") or "sha256:" + hashlib.sha256(raw).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/x"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
cd = push_blob(config)
ld = push_blob(layer)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": cd, "size": len(config)},
                       "layers": [{"mediaType": layer_mt, "digest": ld, "size": len(layer)}]}).encode()
req("PUT", f"{url}/v2/{repo}/manifests/{tag}", manifest, "application/vnd.oci.image.manifest.v1+json")
print("sha256:" + hashlib.sha256(manifest).hexdigest(), ld)
