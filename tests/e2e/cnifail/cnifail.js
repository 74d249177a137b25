// CNI failures through quarkd (driven by cnifail.sh, which wrote the
// network bridge + host-local + cnifail and the plugin): the plain failure
// and a missing plugin leave nothing; a failure whose rollback DEL fails
// too keeps the pod NOTREADY with its netns, IP reservation and cache until
// Stop/Remove can DEL it. Phases: (none) those four cases, restart-before /
// restart-after a pod pending across a restart of quarkd.
'use strict';
const { clients, call, check, done } = require(process.env.CRI_COMMON);
const fs = require('fs');
const { execFileSync } = require('child_process');

const T = process.env.E2E_T;
const SUBNET = process.env.CNIFAIL_SUBNET;
const IPAM = process.env.CNIFAIL_IPAM;
const CACHE = process.env.CNIFAIL_CACHE;
const { runtime: rt } = clients();

const flag = (name, on) => {
  const p = `${T}/fail-${name}`;
  if (on) fs.writeFileSync(p, '');
  else fs.rmSync(p, { force: true });
};
const ls = (dir) => { try { return fs.readdirSync(dir); } catch (e) { return []; } };
const reservations = () => ls(IPAM).filter((f) => f.startsWith(`${SUBNET}.`));
const cacheFiles = () => ls(CACHE);
const netnsName = (id) => `quark-${id.slice(0, 16)}`;
const ipNetns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
// The quark-* namespaces of pods this quarkd logged (other runs on the host
// have their own).
function ourNetns() {
  const log = ['quark.log', 'quarkd.log'].map((f) => { try { return fs.readFileSync(`${T}/${f}`, 'utf8'); } catch (e) { return ''; } }).join('');
  return ls('/var/run/netns').filter((n) => n.startsWith('quark-') && log.includes(`[${n.slice(6, 18)}`));
}
const msg = (r) => (r.err ? r.err.details : 'OK');

function podCfg(name) {
  return { metadata: { name, namespace: 'cnifail', uid: `uid-${name}`, attempt: 0 }, hostname: name };
}
const run = (name) => call(rt, 'RunPodSandbox', { config: podCfg(name), runtime_handler: 'quark' }, 60000);
const stop = (id) => call(rt, 'StopPodSandbox', { pod_sandbox_id: id }, 60000);
const remove = (id) => call(rt, 'RemovePodSandbox', { pod_sandbox_id: id }, 60000);
async function listed(name) {
  const l = await call(rt, 'ListPodSandbox', {});
  return l.err ? [] : l.res.items.filter((p) => p.metadata.name === name);
}

function nothingLeft(what, id) {
  check(ourNetns().length === 0, `${what}: no network namespace of ours (${ourNetns()})`);
  if (id) {
    check(!fs.existsSync(`/var/run/netns/${netnsName(id)}`) && !ipNetns().includes(netnsName(id)),
          `${what}: ${netnsName(id)} gone from /var/run/netns and ip netns list`);
  }
  check(reservations().length === 0, `${what}: no host-local reservation (${reservations()})`);
  check(cacheFiles().length === 0, `${what}: no CNI result cache file (${cacheFiles()})`);
}

// The pod that RunPodSandbox failed for and kept: NOTREADY, netns mounted,
// IP still reserved. Returns its id.
async function expectKept(name, r) {
  check(r.err && /stays NOTREADY/.test(r.err.details) && /cnifail refuses DEL/.test(r.err.details),
        `${name}: the answer appends the DEL failure (${msg(r)})`);
  const l = await listed(name);
  check(l.length === 1 && l[0].state === 'SANDBOX_NOTREADY',
        `${name}: listed NOTREADY (${l.map((p) => p.state)})`);
  if (l.length !== 1) return done();
  const id = l[0].id;
  check(fs.existsSync(`/var/run/netns/${netnsName(id)}`) && ipNetns().includes(netnsName(id)),
        `${name}: ${netnsName(id)} still mounted`);
  check(reservations().length === 1, `${name}: its IP is still reserved (${reservations()})`);
  const s = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
  const info = !s.err && JSON.parse(s.res.info.info || '{}');
  check(info && /cnifail refuses DEL/.test(info.NetworkTeardownError || ''),
        `${name}: verbose status says the teardown is pending (${info && info.NetworkTeardownError})`);
  return id;
}

async function plain() {
  flag('add', true);
  flag('del', false);
  const r = await run('plain');
  check(r.err && /cnifail refuses ADD/.test(r.err.details) && !/stays NOTREADY/.test(r.err.details),
        `plain: RunPodSandbox fails with the plugin's message (${msg(r)})`);
  check((await listed('plain')).length === 0, 'plain: no pod recorded');
  nothingLeft('plain');
}

// A plugin of the list is not installed: the loader's message, nothing left
// (DEL skips a missing plugin while nothing is cached).
async function missingPlugin() {
  flag('add', false);
  flag('del', false);
  const conf = `${T}/cni/10-cnifail.conflist`;
  const orig = fs.readFileSync(conf, 'utf8');
  fs.writeFileSync(conf, orig.replace('"type":"cnifail"', '"type":"cnifail-not-installed"'));
  const r = await run('missing');
  fs.writeFileSync(conf, orig);
  check(r.err && /failed to find plugin "cnifail-not-installed"/.test(r.err.details) &&
        !/stays NOTREADY/.test(r.err.details),
        `missing: RunPodSandbox fails with the loader's message (${msg(r)})`);
  check((await listed('missing')).length === 0, 'missing: no pod recorded');
  nothingLeft('missing');
}

async function addThenDelFails() {
  flag('add', true);
  flag('del', true);
  const r = await run('deladd');
  check(r.err && /cnifail refuses ADD/.test(r.err.details),
        `deladd: the ADD's error stays the answer (${msg(r)})`);
  const id = await expectKept('deladd', r);
  const again = await run('deladd');
  check(again.err && /already exists/.test(again.err.details) && again.err.details.includes(id),
        `deladd: its name stays taken until it is removed (${msg(again)})`);
  const s = await stop(id);
  check(s.err && /cnifail refuses DEL/.test(s.err.details), `deladd: StopPodSandbox reports the DEL failure (${msg(s)})`);
  const rm = await remove(id);
  check(rm.err && /cnifail refuses DEL/.test(rm.err.details), `deladd: RemovePodSandbox refuses with it (${msg(rm)})`);
  check((await listed('deladd')).length === 1, 'deladd: still listed after the refused removal');
  check(fs.existsSync(`/var/run/netns/${netnsName(id)}`) && reservations().length === 1,
        'deladd: netns and reservation kept while DEL fails');
  flag('del', false);
  const s2 = await stop(id);
  check(!s2.err, `deladd: StopPodSandbox succeeds once DEL does (${msg(s2)})`);
  const rm2 = await remove(id);
  check(!rm2.err, `deladd: RemovePodSandbox succeeds (${msg(rm2)})`);
  check((await listed('deladd')).length === 0, 'deladd: no record');
  nothingLeft('deladd', id);
}

// ADD succeeds, the sandbox cannot start (no binary), the DEL fails: the
// result cache stays too; RemovePodSandbox alone finishes it.
async function startThenDelFails() {
  flag('add', false);
  flag('del', true);
  const r = await run('startfail');
  check(r.err && /^start sandbox: /.test(r.err.details), `startfail: the start's error stays the answer (${msg(r)})`);
  const id = await expectKept('startfail', r);
  check(cacheFiles().includes(`cnifail-${id}-eth0`), `startfail: the result cache is kept (${cacheFiles()})`);
  flag('del', false);
  const rm = await remove(id);
  check(!rm.err, `startfail: RemovePodSandbox succeeds once DEL does (${msg(rm)})`);
  check((await listed('startfail')).length === 0, 'startfail: no record');
  nothingLeft('startfail', id);
}

async function main() {
  const phase = process.argv[2];
  if (phase === 'restart-before') {
    flag('add', true);
    flag('del', true);
    const id = await expectKept('restarted', await run('restarted'));
    fs.writeFileSync(`${T}/pending-id`, id);
  } else if (phase === 'restart-after') {
    const id = fs.readFileSync(`${T}/pending-id`, 'utf8');
    check((await listed('restarted')).length === 0, 'restarted: the recovery removed the pod');
    nothingLeft('restarted', id);
  } else {
    await plain();
    await missingPlugin();
    await addThenDelFails();
    await startThenDelFails();
  }
  done();
}
main().catch((e) => { console.error(e); process.exit(1); });
