// One CRI PullImage through @grpc/grpc-js; prints the wall time in ms.
// Usage: node pull_once.js unix:///path.sock IMAGE PROTO
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const [endpoint, image, proto] = process.argv.slice(2);
const def = protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true });
const pkg = grpc.loadPackageDefinition(def).runtime.v1;
const im = new pkg.ImageService(endpoint, grpc.credentials.createInsecure());
// Connect first, so that only the pull is timed.
im.waitForReady(new Date(Date.now() + 10000), (e) => {
  if (e) { console.error(`connect ${endpoint}: ${e.message}`); process.exit(1); }
  const t0 = process.hrtime.bigint();
  im.PullImage({ image: { image } }, { deadline: new Date(Date.now() + 600000) }, (err, res) => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (err) { console.error(`PullImage ${image}: ${err.code} ${err.details}`); process.exit(1); }
    console.log(`${ms.toFixed(1)} ${res.image_ref}`);
    process.exit(0);
  });
});
