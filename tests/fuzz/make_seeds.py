#!/usr/bin/env python3
"""Writes the seed corpora of the JSON, text and tar targets (image_manifest,
image_tar, image_import, cni_result, cri_spec, qcall_host) into tests/fuzz/<target>/seeds. The cri_proto seeds
come from cri_proto/make_seeds.sh (protoc), the elf seeds from
elf/make_seeds.sh (gcc). Run from anywhere; the output is deterministic."""
import base64, gzip, io, json, os, shutil, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
D = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def fresh(target):
    d = os.path.join(HERE, target, "seeds")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def js(o):
    return json.dumps(o, separators=(",", ":"))


# ---- image_manifest: selector (0 ref, 1 manifest, 2 index, 3 config), flag ----
d = fresh("image_manifest")
refs = ["busybox", "busybox:1.36", "library/busybox", "docker.io/library/busybox:latest",
        "index.docker.io/foo/bar", "registry.k8s.io/pause:3.9", "localhost:5000/a/b_c/d-e:v1.0",
        "Foo/bar", "quay.io/x/y@" + D, "ghcr.io/o/r:t@" + D, "127.0.0.1:5000/x", "[::1]:5000/x:y",
        "a..b", "A:b", "a@sha256:zz"]
for i, r in enumerate(refs):
    put(d, "ref-%02d" % i, b"\x00\x00" + r.encode())
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 10}
oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 5},
       "layers": [layer, dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+zstd")]}
docker = {"schemaVersion": 2,
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": D,
                     "size": 5},
          "layers": [dict(layer, mediaType="application/vnd.docker.image.rootfs.diff.tar.gzip")]}
put(d, "manifest-oci", b"\x01\x00" + js(oci).encode())
put(d, "manifest-docker", b"\x01\x02" + js(docker).encode())
put(d, "manifest-sniff", b"\x01\x00" + js({"config": oci["config"], "layers": []}).encode())
put(d, "manifest-schema1", b"\x01\x00" + js({"schemaVersion": 1, "mediaType":
    "application/vnd.docker.distribution.manifest.v1+prettyjws", "fsLayers": []}).encode())
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [
             {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2, "size": 1,
              "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
             {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D, "size": 1,
              "platform": {"os": "linux", "architecture": "amd64"}}]}
put(d, "index", b"\x02\x00" + js(index).encode())
put(d, "index-none", b"\x02\x00" + js({"manifests": [{"digest": D}]}).encode())
cfg = {"architecture": "amd64", "os": "linux",
       "config": {"User": "1000:1000", "Env": ["PATH=/bin", "A=b"], "Entrypoint": ["/bin/sh"],
                  "Cmd": ["-c", "true"], "WorkingDir": "/w", "ExposedPorts": {"80/tcp": {}},
                  "Labels": {"a": "b", "n": 1}, "StopSignal": "SIGTERM"},
       "rootfs": {"type": "layers", "diff_ids": [D2]}, "history": [{"created_by": "x"}]}
put(d, "config", b"\x03\x00" + js(cfg).encode())
put(d, "config-odd", b"\x03\x00" + js({"config": {"Env": "x", "Cmd": [1, None], "Labels": []}}).encode())

# ---- image_tar: layer archives ----
d = fresh("image_tar")


def tar(entries, compress=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 0
            data = b""
            if kind == "file":
                data = extra or b"x\n"
                ti.size = len(data)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, extra[0], extra[1]
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "pax":
                ti.size = len(b"x")
                ti.pax_headers = extra
                data = b"x"
            t.addfile(ti, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    if compress == "gz":
        return gzip.compress(raw, mtime=0)
    return raw


base = [("./", "dir", None), ("etc/", "dir", None), ("etc/passwd", "file", b"root:x:0:0::/:/bin/sh\n"),
        ("bin/", "dir", None), ("bin/sh", "file", b"\x7fELF"), ("bin/ash", "hard", "bin/sh"),
        ("lib", "sym", "usr/lib"), ("dev/", "dir", None), ("dev/null", "chr", (1, 3)),
        ("run/fifo", "fifo", None)]
put(d, "plain.tar", tar(base))
put(d, "plain.tar.gz", tar(base, "gz"))
put(d, "whiteouts.tar", tar([("a/", "dir", None), ("a/.wh..wh..opq", "file", b""),
                             ("a/.wh.gone", "file", b""), ("b/.wh.x", "file", b"")]))
put(d, "escape-dotdot.tar", tar([("../victim", "file", b"pwned\n")]))
put(d, "escape-abs.tar", tar([("/tmp/escape", "file", b"pwned\n")]))
put(d, "escape-symlink.tar", tar([("up", "sym", "../.."), ("up/victim", "file", b"pwned\n")]))
put(d, "escape-symlink-dir.tar", tar([("up", "sym", "/"), ("up/etc/", "dir", None)]))
put(d, "escape-hardlink.tar", tar([("h", "hard", "../../victim")]))
put(d, "escape-whiteout.tar", tar([(".wh...", "file", b""), ("x/.wh.../victim", "file", b"")]))
put(d, "replace-dir-with-link.tar", tar([("d/", "dir", None), ("d", "sym", "/etc"),
                                         ("d/f", "file", b"x")]))
put(d, "pax-xattr.tar", tar([("f", "pax", {"SCHILY.xattr.user.k": "v",
                                            "SCHILY.xattr.trusted.overlay.opaque": "y",
                                            "path": "renamed"})]))
zstd_frame = bytes.fromhex("28b52ffd0458790000") + b""  # truncated zstd header
put(d, "truncated.zst", zstd_frame)

# ---- image_import: mode byte, then chunks "\n--\n" (see fuzz_image_import.c) ----
d = fresh("image_import")
MT_M = "application/vnd.oci.image.manifest.v1+json"
MT_I = "application/vnd.oci.image.index.v1+json"
small_layer = tar([("etc/", "dir", None), ("etc/hostname", "file", b"fuzz\n"),
                   ("bin", "sym", "usr/bin"), ("usr/bin/", "dir", None)])
assert b"\n--\n" not in small_layer


def manifest(cfg_ref, layer_refs, mt="application/vnd.oci.image.layer.v1.tar"):
    return js({"schemaVersion": 2, "mediaType": MT_M,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": cfg_ref, "size": 1},
               "layers": [{"mediaType": mt, "digest": r, "size": 1} for r in layer_refs]})


config_json = js({"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [D2]}})
sep = b"\n--\n"
idx = js({"schemaVersion": 2, "manifests": [{"mediaType": MT_M, "digest": "@1", "size": 1,
          "annotations": {"org.opencontainers.image.ref.name": "latest"}}]})
put(d, "simple", b"\x00" + sep.join([idx.encode(), manifest("@2", ["@3"]).encode(),
                                       config_json.encode(), small_layer]))
put(d, "simple-named", b"\x02" + sep.join([idx.encode(), manifest("@2", ["@3"]).encode(),
                                             config_json.encode(), small_layer]))
idx_full = js({"manifests": [{"mediaType": MT_I, "digest": "@1", "size": 1, "annotations":
               {"io.containerd.image.name": "docker.io/library/fuzz:1"}}]})
nested = js({"schemaVersion": 2, "mediaType": MT_I, "manifests": [
    {"mediaType": MT_M, "digest": "@2", "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}]})
put(d, "nested-gz", b"\x00" + sep.join([idx_full.encode(), nested.encode(),
    manifest("@3", ["@4"], "application/vnd.oci.image.layer.v1.tar+gzip").encode(),
    config_json.encode(), gzip.compress(small_layer, mtime=0).replace(sep, b"")]))
put(d, "two-images", b"\x00" + sep.join([js({"manifests": [
    {"digest": "@1", "annotations": {"org.opencontainers.image.ref.name": "a:1"}},
    {"digest": "@2", "annotations": {"org.opencontainers.image.ref.name": "b"}}]}).encode(),
    manifest("@3", ["@5"]).encode(), manifest("@4", []).encode(), config_json.encode(),
    js({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}}).encode(),
    small_layer]))
put(d, "escape-layer", b"\x00" + sep.join([idx.encode(), manifest("@2", ["@3"]).encode(),
    config_json.encode(), tar([("../../victim", "file", b"pwned\n")])]))
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                       ("index.json", b'{"manifests":[{"digest":"' + D.encode() + b'"}]}'),
                       ("blobs/sha256/" + "0" * 64, b"x"), ("blobs/sha256/../../x", b"y")]:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
put(d, "raw", b"\x01" + raw.getvalue())

# ---- cni_result: selector (0 result, 1 list, 2 conf, 3 cache, 4 bandwidth, 5 render) ----
d = fresh("cni_result")
r100 = {"cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                       {"name": "eth0", "mac": "aa:bb:cc:dd:ee:01", "sandbox": "/var/run/netns/x"}],
        "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1},
                {"address": "fd00::5/64", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}],
        "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local",
                "search": ["svc.cluster.local"], "options": ["ndots:5"]}}
put(d, "result-1.0.0", b"\x00" + js(r100).encode())
r031 = dict(r100, cniVersion="0.3.1")
r031["ips"] = [dict(ip, version="4" if ":" not in ip["address"] else "6") for ip in r100["ips"]]
put(d, "result-0.3.1", b"\x00" + js(r031).encode())
put(d, "result-0.2.0", b"\x00" + js({"cniVersion": "0.2.0",
    "ip4": {"ip": "10.1.0.2/24", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
    "ip6": {"ip": "fd00::2/64"}, "dns": {"nameservers": ["8.8.8.8"]}}).encode())
put(d, "result-noversion", b"\x00" + js({"ip4": {"ip": "10.1.0.2/24"}}).encode())
put(d, "result-badiface", b"\x00" + js(dict(r100, ips=[{"address": "10.0.0.1/8", "interface": 7}])).encode())
conflist = {"cniVersion": "1.0.0", "name": "mynet", "disableCheck": True,
            "plugins": [{"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local",
                         "ranges": [[{"subnet": "10.88.0.0/16"}]]}},
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                        {"type": "bandwidth", "capabilities": {"bandwidth": True}}]}
put(d, "conflist", b"\x01" + js(conflist).encode())
put(d, "conflist-empty", b"\x01" + js({"cniVersion": "0.4.0", "name": "x", "plugins": []}).encode())
put(d, "conf", b"\x02" + js({"cniVersion": "0.3.1", "name": "n", "type": "bridge",
                             "ipam": {"type": "dhcp"}}).encode())
put(d, "conf-noname", b"\x02" + js({"cniVersion": "0.3.1", "type": "bridge"}).encode())
cache = {"kind": "cniCacheV1", "containerId": "0123456789abcdef", "networkName": "fuzznet",
         "ifName": "eth0", "netns": "/var/run/netns/x",
         "config": base64.b64encode(js(conflist).encode()).decode(),
         "cniArgs": [["K8S_POD_NAME", "web"], ["IgnoreUnknown", "1"]],
         "capabilityArgs": {"portMappings": [{"hostPort": 8080, "containerPort": 80}]},
         "result": r100}
put(d, "cache", b"\x03" + js(cache).encode())
put(d, "cache-badb64", b"\x03" + js(dict(cache, config="!!!", cniArgs={"a": 1})).encode())
for i, q in enumerate(["10M", "1Gi", "500k", "1.5M", "1e3", "0.001G", "999", "2P", "-1M", "1Ei"]):
    put(d, "bw-%d" % i, b"\x04" + q.encode())
put(d, "render", b"\x05" + b"\x00".join([b"10.96.0.10", b"fd00::10", b"svc.cluster.local",
                                           b"cluster.local", b"ndots:5", b"timeout:1"]))
put(d, "render-newline", b"\x05" + b"\x00".join([b"web", b"web.ns.svc", b"10.0.0.1\nevil",
                                                   b"fd00::1"]))
# ---- cri_spec: selector (0 user, 1 argv, 2 env, 3 mount), NUL fields, "\x01" ends a list ----
d = fresh("cri_spec")
Z, L = b"\x00", b"\x00\x01\x00"
passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nbad:x:abc:1\n"
group = b"root:x:0:\nwheel:x:10:app,root\napp:x:1000:\ndocker:x:999:app\nbroken\n"
for i, u in enumerate([b"app", b"1000", b"app:wheel", b"1000:10", b"0:docker", b"nobody:nogroup",
                       b"4294967295", b"-1", b"", b"app:"]):
    put(d, "user-%d" % i, b"\x00" + Z.join([u, passwd, group]))
put(d, "argv-command", b"\x01" + L.join([Z.join([b"/bin/sh", b"-c"]), b"echo hi",
                                           b"/entry", b"cmd"]))
put(d, "argv-image", b"\x01" + L.join([b"", b"", Z.join([b"/entry", b"--flag"]),
                                         Z.join([b"default", b"args"])]))
put(d, "argv-args-only", b"\x01" + L.join([b"", b"x", b"/entry", b"cmd"]))
put(d, "env", b"\x02" + L.join([Z.join([b"PATH=/bin", b"HOME=/root", b"A=1"]),
                                  Z.join([b"A", b"B", b"A"]), Z.join([b"2", b"3", b"4"])]))
put(d, "env-badkey", b"\x02" + L.join([b"X=1", Z.join([b"", b"K=V"]), Z.join([b"1", b"2"])]))
for i, (c, h) in enumerate([(b"/data", b"/tmp"), (b"/a/../b", b"/tmp"), (b"rel", b"/tmp"),
                            (b"/x..y/..z", b"/"), (b"/ok", b"relative")]):
    put(d, "mount-%d" % i, b"\x03" + Z.join([c, h]))
# ---- qcall_host: blob length (LE16), blob, requests (op, 6 x (kind, LE32)) ----
# kinds: 0 value, 1 blob offset, 2 handle index, 3+ shifted value (see fuzz_qcall_host.c)
import struct
d = fresh("qcall_host")


def req(op, *args):
    args = list(args) + [(0, 0)] * (6 - len(args))
    return bytes([op]) + b"".join(struct.pack("<BI", k, v) for k, v in args)


def seed(name, blob, reqs):
    put(d, name, struct.pack("<H", len(blob)) + blob + b"".join(reqs))


OPENAT, CLOSE, PREADV, PWRITEV, FSTAT, FSTATAT, GETDENTS = 3, 4, 5, 6, 7, 8, 9
READLINK, MKDIRAT, UNLINKAT, SOCKET, BIND, CONNECT, LISTEN, ACCEPT = 10, 21, 22, 24, 25, 26, 27, 28
SENDMSG, RECVMSG, NET_POLL, SENDFILE, RENAMEAT, LINKAT, SYMLINKAT = 30, 31, 35, 37, 38, 39, 40
FCHMODAT, MKNODAT, FALLOCATE = 41, 46, 47
H = lambda i: (2, i)  # handle i (0-3 standing, 4.. returned ones)
B = lambda off: (1, off)  # address blob+off
V = lambda v: (0, v)
# Blob: paths at 0/64/128/192, an iovec {blob+1024, 256} at 512, buffers at 1024+.
blob = bytearray(2048)
for off, path in ((0, b"hello.txt"), (64, b"../outside/victim"), (128, b"victim-link"), (192, b"dir/new")):
    blob[off:off + len(path)] = path
blob[512:528] = struct.pack("<QQ", 0x10000 + 1024, 256)
blob = bytes(blob)
seed("read-file", blob, [req(OPENAT, H(3), B(0), V(9), V(0)), req(PREADV, H(4), B(512), V(1), V(0)),
                         req(FSTAT, H(4), B(1536)), req(CLOSE, H(4))])
seed("escape", blob, [req(OPENAT, H(3), B(64), V(17), V(0)), req(OPENAT, H(3), B(128), V(11), V(2)),
                      req(RENAMEAT, H(3), B(0), V(9), B(64), V(17)), req(LINKAT, H(3), B(128), V(11), B(192), V(7), V(0x400)),
                      req(SYMLINKAT, H(3), B(64), V(17), B(192), V(7)), req(FCHMODAT, H(3), B(128), V(11), V(0o777), V(0))])
seed("write-file", blob, [req(MKDIRAT, H(3), B(192), V(3), V(0o755)), req(OPENAT, H(3), B(192), V(7), V(0o102), V(0o644)),
                          req(PWRITEV, H(4), B(512), V(1), V(0)), req(FALLOCATE, H(4), V(0), V(0), V(4096)),
                          req(GETDENTS, H(3), B(1024), V(512)), req(UNLINKAT, H(3), B(192), V(7), V(0))])
# sockaddr_in 127.0.0.1:7777 at 256
sin = struct.pack("<H", 2) + struct.pack(">H", 7777) + bytes([127, 0, 0, 1]) + bytes(8)
nblob = bytearray(blob)
nblob[256:256 + 16] = sin
nblob = bytes(nblob)
seed("sockets", nblob, [req(SOCKET, V(2), V(1), V(0)), req(BIND, H(4), B(256), V(16)), req(LISTEN, H(4), V(8)),
                        req(SOCKET, V(2), V(1), V(0)), req(CONNECT, H(5), B(256), V(16)), req(ACCEPT, H(4), V(0), V(0), V(0)),
                        req(SENDMSG, H(5), B(512), V(1), V(0)), req(RECVMSG, H(6), B(512), V(1), V(0)),
                        req(SENDFILE, H(5), H(3), V(0), V(100))])
seed("wild", blob, [req(PREADV, H(1), (3 << 2 | 3, 0xffffffff), V(64), V(0)), req(FSTATAT, H(3), (0x3f << 2 | 3, 1), V(4096)),
                    req(MKNODAT, H(3), B(192), V(7), V(0o10644)), req(READLINK, H(3), B(128), V(11), B(1024), V(0xffffffff))])

print("seeds written")
