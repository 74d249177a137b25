// Hostile and clumsy clients: after each, quarkd must still answer Version.
'use strict';
const net = require('net');
const http2 = require('http2');
const crypto = require('crypto');
const { grpc, clients, call, rawCall, check, expectCode, expectAlive, done } = require('./common');

const sockPath = process.env.QUARK_ENDPOINT.replace(/^unix:\/\//, '');
const VERSION = '/runtime.v1.RuntimeService/Version';

function rawSocket(bytes, waitMs) {
  return new Promise((resolve) => {
    const s = net.createConnection(sockPath);
    let got = 0;
    const finish = () => { s.destroy(); resolve(got); };
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => { got += d.length; });
    s.on('error', finish);
    s.on('close', finish);
    setTimeout(finish, waitMs);
  });
}

// A gRPC message frame: flag, 4-byte big-endian length, payload.
function grpcFrame(payload, declaredLen) {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(declaredLen === undefined ? payload.length : declaredLen, 1);
  return Buffer.concat([h, payload]);
}

// Opens an HTTP/2 stream for `path` by hand, writes `body`, then either
// drops the whole connection or resets the stream, without waiting.
function abandonedCall(path, body, how) {
  return new Promise((resolve) => {
    const session = http2.connect('http://quark', { createConnection: () => net.createConnection(sockPath) });
    session.on('error', () => {});
    const req = session.request({
      ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers',
    });
    req.on('error', () => {});
    req.write(body, () => {
      setTimeout(() => {
        if (how === 'reset') req.close(http2.constants.NGHTTP2_CANCEL);
        else session.destroy();
        setTimeout(() => { session.destroy(); resolve(); }, 50);
      }, 20);
    });
  });
}

(async () => {
  const { runtime: rt } = clients();
  await expectAlive(rt, 'start');

  // 1. Raw garbage instead of HTTP/2.
  await rawSocket(crypto.randomBytes(8192), 1000);
  await expectAlive(rt, 'random bytes on the socket');
  await rawSocket(Buffer.from('GET / HTTP/1.1\r\nHost: quark\r\n\r\n'), 1000);
  await expectAlive(rt, 'an HTTP/1.1 request');
  // The HTTP/2 preface followed by a frame header that lies about its size.
  await rawSocket(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
                                 Buffer.from([0xff, 0xff, 0xff, 0x01, 0xff, 0, 0, 0, 1]),
                                 crypto.randomBytes(4096)]), 1000);
  await expectAlive(rt, 'the HTTP/2 preface and a bogus frame');

  // 2. A valid gRPC frame whose protobuf payload is malformed.
  let r = await rawCall(rt, VERSION, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
  expectCode(r, grpc.status.INVALID_ARGUMENT, 'Version with a malformed varint');
  r = await rawCall(rt, VERSION, Buffer.from([0x0a, 0x7f, 0x41]));      // string longer than the message
  expectCode(r, grpc.status.INVALID_ARGUMENT, 'Version with a truncated string');
  r = await rawCall(rt, '/runtime.v1.RuntimeService/ListPodSandbox', Buffer.from([0x0a, 0x03, 0x12, 0x05, 0x08]));
  expectCode(r, grpc.status.INVALID_ARGUMENT, 'ListPodSandbox with a malformed nested filter');
  r = await rawCall(rt, '/runtime.v1.RuntimeService/Status', crypto.randomBytes(4096));
  check(r.err && r.err.code === grpc.status.INVALID_ARGUMENT || !r.err, 'Status with random bytes: refused or decoded, not crashed');
  await expectAlive(rt, 'malformed protobuf');
  // Unknown fields are legal protobuf and must be skipped.
  r = await rawCall(rt, VERSION, Buffer.from([0x0a, 0x01, 0x31, 0xf8, 0x07, 0x05]));
  expectCode(r, grpc.status.OK, 'Version with an unknown field');

  // 3. A 64 MiB message: over the 16 MiB limit, refused without harm.
  const big = Buffer.alloc(64 << 20, 0x61);
  const hdr = Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x20]);              // field 1, length 64 MiB
  r = await rawCall(rt, VERSION, Buffer.concat([hdr, big]), 60000);
  expectCode(r, grpc.status.RESOURCE_EXHAUSTED, '64 MiB request');
  await expectAlive(rt, 'a 64 MiB message');

  // 4. 200 concurrent calls on one channel, and 200 more over 20 channels.
  let t0 = Date.now();
  const calls = [];
  for (let i = 0; i < 200; i++) {
    const m = ['Version', 'Status', 'ListPodSandbox', 'ListContainers'][i % 4];
    calls.push(call(rt, m, m === 'Version' ? { version: '0.1.0' } : {}, 30000));
  }
  let results = await Promise.all(calls);
  check(results.every((x) => !x.err), `200 concurrent calls on one channel all OK (${Date.now() - t0} ms)`);
  t0 = Date.now();
  const many = [];
  for (let c = 0; c < 20; c++) {
    const { runtime } = clients({ 'grpc.use_local_subchannel_pool': 1 });
    for (let i = 0; i < 10; i++) many.push(call(runtime, 'Version', { version: '0.1.0' }, 30000));
  }
  results = await Promise.all(many);
  check(results.every((x) => !x.err), `200 concurrent calls over 20 channels all OK (${Date.now() - t0} ms)`);
  await expectAlive(rt, '400 concurrent calls');

  // 5. Clients that go away mid-call.
  const half = grpcFrame(Buffer.from([0x0a, 0x05, 0x30]), 7);            // 3 of 7 bytes sent
  for (let i = 0; i < 20; i++) await abandonedCall(VERSION, half, i % 2 ? 'reset' : 'drop');
  await expectAlive(rt, 'clients that disconnect with half a message sent');
  for (let i = 0; i < 20; i++) await abandonedCall('/runtime.v1.RuntimeService/Status', grpcFrame(Buffer.from([])), 'drop');
  await expectAlive(rt, 'clients that disconnect right after a whole request');
  const cancelled = [];
  for (let i = 0; i < 50; i++) {
    cancelled.push(new Promise((resolve) => {
      const c = rt.Status({ verbose: true }, (err) => resolve(err));
      setImmediate(() => c.cancel());
    }));
  }
  await Promise.all(cancelled);
  await expectAlive(rt, '50 calls cancelled by the client');

  done();
})();
