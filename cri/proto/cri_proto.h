/* Include this, not api.pb-c.h: the CRI messages have fields named `linux`,
 * which GNU C predefines as a macro (gnu11 sets `linux` to 1). Types are
 * Runtime__V1__<Message>, descriptors runtime__v1__<message>__descriptor,
 * services runtime__v1__runtime_service__descriptor and
 * runtime__v1__image_service__descriptor. */
#ifndef QUARK_CRI_PROTO_H
#define QUARK_CRI_PROTO_H

#undef linux
#include "api.pb-c.h"

#endif
