/* SPDX-License-Identifier: MIT */
/* pollux: the umbrella header. */
#ifndef POLLUX_POLLUX_H
#define POLLUX_POLLUX_H

#include "pollux/cuda.h"
#include "pollux/ep.h"
#include "pollux/export.h"
#include "pollux/mem.h"
#include "pollux/rdma.h"
#include "pollux/reactor.h"
#include "pollux/status.h"
#include "pollux/tcp.h"

#define PLX_VERSION_MAJOR 0
#define PLX_VERSION_MINOR 1
#define PLX_VERSION_PATCH 0

#endif /* POLLUX_POLLUX_H */
