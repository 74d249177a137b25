/* `quark-sandbox pod`: one process per pod serving the control protocol
 * (proto.h) on a unix socket, running the pod's containers.
 *
 * Until the guest task layer runs several processes in one kernel
 * (guestkernel/include/qk/ctl.h is the contract for that), every container
 * and every exec is a guest of its own (guest.h) inside this process: the
 * container's root filesystem, mounts, environment and log file are its
 * own, and they share the pod's network namespace and this process's
 * lifetime. Signals stop that guest (status 128+signal); signals whose
 * default action is to ignore are ignored.
 */
#ifndef SBX_POD_H
#define SBX_POD_H

int sbx_pod_main(int argc, char **argv);

#endif
