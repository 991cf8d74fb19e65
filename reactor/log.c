/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "reactor/internal.h"

void plx__log(struct plx__reactor *x, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!x->cfg.log_cb || level > x->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->cfg.log_cb(x->cfg.log_arg, level, msg);
}

#ifndef NDEBUG
void plx__assert_owner_fail(const struct plx__reactor *x, const char *fn)
{
	plx__log((struct plx__reactor *)x, PLX_LOG_ERROR,
		 "%s called off the reactor's owner thread", fn);
	/* a contract violation: stop here rather than corrupt the reactor */
	abort();
}
#endif
