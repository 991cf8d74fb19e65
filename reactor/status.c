/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "pollux/status.h"

struct plx__code {
	int code;
	const char *name;
	const char *text;
};

/* clang-format off */
static const struct plx__code plx__codes[] = {
	{PLX_EPERM, "PLX_EPERM", "operation not permitted"},
	{PLX_ENOENT, "PLX_ENOENT", "no such object"},
	{PLX_EINTR, "PLX_EINTR", "interrupted"},
	{PLX_EIO, "PLX_EIO", "I/O error"},
	{PLX_EBADF, "PLX_EBADF", "bad file descriptor"},
	{PLX_EAGAIN, "PLX_EAGAIN", "resource temporarily unavailable (full or empty)"},
	{PLX_ENOMEM, "PLX_ENOMEM", "out of memory"},
	{PLX_EACCES, "PLX_EACCES", "access not permitted by the region"},
	{PLX_EFAULT, "PLX_EFAULT", "address range outside the region"},
	{PLX_EBUSY, "PLX_EBUSY", "busy: object in use or work pending"},
	{PLX_EEXIST, "PLX_EEXIST", "already exists"},
	{PLX_ENODEV, "PLX_ENODEV", "no such device"},
	{PLX_EINVAL, "PLX_EINVAL", "invalid argument"},
	{PLX_EMFILE, "PLX_EMFILE", "too many open files"},
	{PLX_ENOSPC, "PLX_ENOSPC", "bounded table or buffer is full"},
	{PLX_ERANGE, "PLX_ERANGE", "value out of range"},
	{PLX_ENOSYS, "PLX_ENOSYS", "not implemented"},
	{PLX_EPROTO, "PLX_EPROTO", "protocol error"},
	{PLX_EBADMSG, "PLX_EBADMSG", "malformed message"},
	{PLX_EOVERFLOW, "PLX_EOVERFLOW", "value too large"},
	{PLX_EMSGSIZE, "PLX_EMSGSIZE", "message too long or truncated"},
	{PLX_EPROTONOSUPPORT, "PLX_EPROTONOSUPPORT", "protocol version not supported"},
	{PLX_ENOTSUP, "PLX_ENOTSUP", "operation not supported"},
	{PLX_EADDRINUSE, "PLX_EADDRINUSE", "address already in use"},
	{PLX_ENETDOWN, "PLX_ENETDOWN", "network is down"},
	{PLX_ENETUNREACH, "PLX_ENETUNREACH", "network is unreachable"},
	{PLX_ECONNABORTED, "PLX_ECONNABORTED", "connection aborted"},
	{PLX_ECONNRESET, "PLX_ECONNRESET", "connection reset by peer"},
	{PLX_ENOBUFS, "PLX_ENOBUFS", "no buffer space available"},
	{PLX_ENOTCONN, "PLX_ENOTCONN", "not connected"},
	{PLX_ESHUTDOWN, "PLX_ESHUTDOWN", "shutting down"},
	{PLX_ETIMEDOUT, "PLX_ETIMEDOUT", "timed out"},
	{PLX_ECONNREFUSED, "PLX_ECONNREFUSED", "connection refused"},
	{PLX_EHOSTUNREACH, "PLX_EHOSTUNREACH", "no route to host"},
	{PLX_EALREADY, "PLX_EALREADY", "already done or in progress"},
	{PLX_EINPROGRESS, "PLX_EINPROGRESS", "operation in progress"},
	{PLX_ECANCELED, "PLX_ECANCELED", "operation cancelled"},
	{PLX_EKEYREJECTED, "PLX_EKEYREJECTED", "key unknown, stale or revoked"},
	{PLX_EUNAVAIL, "PLX_EUNAVAIL", "transport or feature unavailable on this host"},
	{PLX_EAUTH, "PLX_EAUTH", "peer authentication failed"},
	{PLX_EVERSION, "PLX_EVERSION", "incompatible wire protocol version"},
	{PLX_EREMOTE, "PLX_EREMOTE", "the remote side reported a failure"},
	{PLX_EVERBS, "PLX_EVERBS", "RDMA verbs error"},
	{PLX_ECUDA, "PLX_ECUDA", "CUDA error"},
};
/* clang-format on */

static const struct plx__code *plx__find(int code)
{
	for (size_t i = 0; i < sizeof(plx__codes) / sizeof(plx__codes[0]); i++)
		if (plx__codes[i].code == code)
			return &plx__codes[i];
	return NULL;
}

PLX_API const char *plx_strerror(int code)
{
	const struct plx__code *c;

	if (code >= 0)
		return "success";
	c = plx__find(code);
	return c ? c->text : "unknown error";
}

PLX_API const char *plx_errname(int code)
{
	const struct plx__code *c;

	if (code >= 0)
		return "PLX_OK";
	c = plx__find(code);
	return c ? c->name : "PLX_E?";
}
