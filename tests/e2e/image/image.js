// ImageService checks through @grpc/grpc-js. argv[2]: the image root.
'use strict';
const path = require('path');
const fs = require('fs');
const { clients, call, check, expectCode, done } = require(path.join(__dirname, '../cri/common.js'));
const grpc = require('@grpc/grpc-js');

(async () => {
  const { image: im } = clients();
  const root = process.argv[2];
  const blobs = () => fs.readdirSync(path.join(root, 'blobs/sha256')).length;

  let r = await call(im, 'PullImage', { image: { image: 'busybox' } }, 60000);
  expectCode(r, grpc.status.OK, 'PullImage busybox via the docker.io mirror');
  const bb = r.res && r.res.image_ref;
  check(/^sha256:[0-9a-f]{64}$/.test(bb || ''), `PullImage answers an image id (${bb})`);
  r = await call(im, 'PullImage', { image: { image: 'docker.io/library/redis:7' } }, 60000);
  expectCode(r, grpc.status.OK, 'PullImage redis:7');
  const rd = r.res && r.res.image_ref;

  r = await call(im, 'ImageStatus', { image: { image: 'redis:7' }, verbose: true });
  expectCode(r, grpc.status.OK, 'ImageStatus redis:7');
  const img = r.res && r.res.image;
  check(img && img.id === rd, 'ImageStatus id matches the pull');
  check(img && img.repo_tags.includes('docker.io/library/redis:7'), `repo tags ${img && img.repo_tags}`);
  check(img && img.repo_digests.length === 1 && img.repo_digests[0].startsWith('docker.io/library/redis@sha256:'),
        `repo digests ${img && img.repo_digests}`);
  check(img && Number(img.size) > 1000000, `size ${img && img.size}`);
  check(img && img.uid && img.uid.value === '0', 'uid 0 for an image without User');
  const info = r.res && r.res.info && r.res.info.info ? JSON.parse(r.res.info.info) : null;
  check(info && info.imageSpec.config.ExposedPorts['6379/tcp'] !== undefined, 'verbose info carries the image config');

  r = await call(im, 'ImageStatus', { image: { image: 'nosuch:tag' } });
  check(!r.err && !r.res.image, 'ImageStatus of an absent image: OK without image');
  r = await call(im, 'ImageStatus', { image: { image: bb } });
  check(!r.err && r.res.image && r.res.image.repo_tags.includes('docker.io/library/busybox:latest'), 'ImageStatus by id');

  r = await call(im, 'ListImages', {});
  expectCode(r, grpc.status.OK, 'ListImages');
  check(r.res && r.res.images.length === 2, `ListImages lists 2 images (${r.res && r.res.images.length})`);
  r = await call(im, 'ListImages', { filter: { image: { image: 'busybox' } } });
  check(r.res && r.res.images.length === 1 && r.res.images[0].id === bb, 'ListImages with a filter');
  r = await call(im, 'ListImages', { filter: { image: { image: 'nosuch' } } });
  check(r.res && r.res.images.length === 0, 'ListImages with a filter that matches nothing');

  r = await call(im, 'ImageFsInfo', {});
  expectCode(r, grpc.status.OK, 'ImageFsInfo');
  const fsu = r.res && r.res.image_filesystems[0];
  check(fsu && Number(fsu.used_bytes.value) > 1000000 && Number(fsu.inodes_used.value) > 10 &&
        fsu.fs_id.mountpoint === root && Number(fsu.timestamp) > 0,
        `ImageFsInfo: ${fsu && fsu.used_bytes.value} bytes, ${fsu && fsu.inodes_used.value} inodes at ${fsu && fsu.fs_id.mountpoint}`);

  r = await call(im, 'PullImage', { image: { image: 'busybox:nope' } }, 60000);
  check(r.err && r.err.code === grpc.status.NOT_FOUND && /not found/.test(r.err.details),
        `PullImage of a missing tag: ${r.err && r.err.code} ${r.err && r.err.details.slice(0, 120)}`);
  r = await call(im, 'PullImage', { image: { image: 'Bad//Ref' } });
  expectCode(r, grpc.status.INVALID_ARGUMENT, 'PullImage of a malformed reference');
  r = await call(im, 'PullImage', {});
  expectCode(r, grpc.status.INVALID_ARGUMENT, 'PullImage without an image');

  const before = blobs();
  r = await call(im, 'RemoveImage', { image: { image: 'redis:7' } });
  expectCode(r, grpc.status.OK, 'RemoveImage redis:7');
  check(blobs() < before, `RemoveImage frees blobs (${before} -> ${blobs()})`);
  r = await call(im, 'RemoveImage', { image: { image: 'redis:7' } });
  expectCode(r, grpc.status.OK, 'RemoveImage of an absent image is OK');
  r = await call(im, 'ListImages', {});
  check(r.res && r.res.images.length === 1, 'ListImages after RemoveImage');
  r = await call(im, 'RemoveImage', { image: { image: bb } });
  expectCode(r, grpc.status.OK, 'RemoveImage by id');
  check(blobs() === 0, `no blobs left (${blobs()})`);

  // AuthConfig: username/password and the base64 auth field.
  const aref = process.env.AUTH_REF;
  r = await call(im, 'PullImage', { image: { image: aref } }, 60000);
  check(r.err && r.err.code === grpc.status.PERMISSION_DENIED && /requires authentication/.test(r.err.details),
        `PullImage without credentials: ${r.err && r.err.code} ${r.err && r.err.details.slice(-90)}`);
  r = await call(im, 'PullImage', { image: { image: aref }, auth: { username: 'carol', password: 'nope' } }, 60000);
  check(r.err && r.err.code === grpc.status.PERMISSION_DENIED, 'PullImage with a wrong password is refused');
  r = await call(im, 'PullImage', { image: { image: aref }, auth: { username: 'carol', password: 'pw1' } }, 60000);
  expectCode(r, grpc.status.OK, 'PullImage with username/password');
  await call(im, 'RemoveImage', { image: { image: aref } });
  r = await call(im, 'PullImage', { image: { image: aref }, auth: { auth: Buffer.from('carol:pw1').toString('base64') } }, 60000);
  expectCode(r, grpc.status.OK, 'PullImage with AuthConfig.auth');
  r = await call(im, 'RemoveImage', { image: { image: aref } });
  expectCode(r, grpc.status.OK, 'RemoveImage of the private image');
  done();
})();
