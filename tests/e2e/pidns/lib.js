// Helpers of the pid namespace scripts (pidns.js, target.js): busybox
// containers running `sh -c SCRIPT marker-NAME`, ExecSync into them, and
// the processes a container's /proc lists.
'use strict';
const { call, check, done, BUSYBOX } = require(process.env.CRI_COMMON);

// mode: 'POD', 'CONTAINER', 'TARGET' (of target, a container id) or null
// (no namespace_options at all).
function ctr(name, script, mode, target) {
  const c = { metadata: { name, attempt: 0 }, image: { image: BUSYBOX },
              command: ['/bin/sh', '-c', script, `marker-${name}`], log_path: `${name}.log` };
  if (mode) c.linux = { security_context: { namespace_options: { pid: mode, target_id: target || '' } } };
  return c;
}
function create(rt, podCfg, podId, cfg) {
  return call(rt, 'CreateContainer', { pod_sandbox_id: podId, config: cfg, sandbox_config: podCfg }, 60000);
}
// Created and started (a failed create ends the script).
async function run(rt, podCfg, podId, cfg) {
  const r = await create(rt, podCfg, podId, cfg);
  check(!r.err, `CreateContainer ${cfg.metadata.name}` + (r.err ? ` (${r.err.details})` : ''));
  if (r.err) done();
  const s = await call(rt, 'StartContainer', { container_id: r.res.container_id }, 60000);
  check(!s.err, `StartContainer ${cfg.metadata.name}` + (s.err ? ` (${s.err.details})` : ''));
  return r.res.container_id;
}
async function sh(rt, id, script) {
  const r = await call(rt, 'ExecSync', { container_id: id, cmd: ['/bin/sh', '-c', script], timeout: 30 }, 40000);
  return r.err ? `(error ${r.err.details})` : r.res.stdout.toString() + r.res.stderr.toString();
}
async function state(rt, id, verbose) {
  const r = await call(rt, 'ContainerStatus', { container_id: id, verbose: !!verbose });
  return r.err ? null : verbose ? r.res : r.res.status;
}
// The command lines of every process the container's /proc lists: "pid ppid state args".
const PS = 'for d in /proc/[0-9]*; do [ -r $d/cmdline ] || continue; ' +
  'set -- $(cat $d/stat 2>/dev/null); echo "$1 $4 $3 $(tr "\\0" " " < $d/cmdline 2>/dev/null)"; done';
function procs(text) {
  return text.split('\n').filter((l) => /^\d+ /.test(l)).map((l) => {
    const [pid, ppid, st, ...args] = l.split(' ');
    return { pid: Number(pid), ppid: Number(ppid), st, args: args.join(' ').trim() };
  });
}
const has = (list, re) => list.some((p) => re.test(p.args));

module.exports = { ctr, create, run, sh, state, PS, procs, has };
