#!/usr/bin/env python3
"""A registry front for the tests: serves manifests by proxying to the real
registry, answers each blob first with 503 (the client must retry) and then
with a 307 redirect to the real registry (the client must follow it), like
registries that keep blobs in object storage. Logs one line per request.
With --slow, blobs are proxied instead, at about 2 MB/s (to kill a puller
mid-download). With --drop, blobs are proxied, the first answer for each
blob breaks off after half its bytes and later ones honour Range (the client
must resume). Usage: redirector.py PORT UPSTREAM_URL LOGFILE [--slow|--drop]"""
import http.server, sys, time, urllib.request

port, upstream, logfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
slow = "--slow" in sys.argv[4:]
drop = "--drop" in sys.argv[4:]
seen = set()

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        with open(logfile, "a") as f:
            f.write(f"{self.path} auth={'Authorization' in self.headers} range={self.headers.get('Range')}\n")
        if "/blobs/" in self.path and drop:
            hdrs = {"Range": self.headers["Range"]} if self.headers.get("Range") else {}
            r = urllib.request.urlopen(urllib.request.Request(upstream + self.path, headers=hdrs))
            body = r.read()
            first = self.path not in seen
            seen.add(self.path)
            self.send_response(r.status)
            for h in ("Content-Length", "Content-Range"):
                if r.headers.get(h):
                    self.send_header(h, r.headers[h])
            self.end_headers()
            if first and len(body) > 1:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)
            return
        if "/blobs/" in self.path and slow:
            r = urllib.request.urlopen(upstream + self.path)
            self.send_response(200)
            self.send_header("Content-Length", r.headers["Content-Length"])
            self.end_headers()
            try:
                while True:
                    chunk = r.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    time.sleep(0.03)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if "/blobs/" in self.path:
            if self.path not in seen:
                seen.add(self.path)
                self.send_response(503)
                self.end_headers()
                return
            self.send_response(307)
            self.send_header("Location", upstream + self.path)
            self.end_headers()
            return
        req = urllib.request.Request(upstream + self.path, headers={"Accept": self.headers.get("Accept", "")})
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            self.send_response(e.code)
            self.end_headers()
            return
        body = r.read()
        self.send_response(200)
        for h in ("Content-Type", "Docker-Content-Digest"):
            if r.headers.get(h):
                self.send_header(h, r.headers[h])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
