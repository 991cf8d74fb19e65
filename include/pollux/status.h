/* SPDX-License-Identifier: MIT */
/*
 * pollux status codes.
 *
 * One convention everywhere: a fallible call returns an int that is 0 on
 * success, a non-negative count where the call counts something, or a
 * negative PLX_E* code. Where an errno fits, PLX_Exxx == -Exxx (Linux values),
 * so a code can be passed to strerror(-code) as well. Codes that no errno
 * describes are pollux's own and lie below -4095 (outside the errno range).
 */
#ifndef POLLUX_STATUS_H
#define POLLUX_STATUS_H

#include <errno.h>

#include "pollux/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PLX_OK 0

/* errno-equal codes */
/* clang-format off */
#define PLX_EPERM (-EPERM)                     /* operation not permitted */
#define PLX_ENOENT (-ENOENT)                   /* no such object / name */
#define PLX_EINTR (-EINTR)                     /* interrupted */
#define PLX_EIO (-EIO)                         /* I/O error */
#define PLX_EBADF (-EBADF)                     /* bad file descriptor */
#define PLX_EAGAIN (-EAGAIN)                   /* full or empty: try later */
#define PLX_ENOMEM (-ENOMEM)                   /* out of memory (setup path) */
#define PLX_EACCES (-EACCES)                   /* access not permitted by key */
#define PLX_EFAULT (-EFAULT)                   /* address outside a region */
#define PLX_EBUSY (-EBUSY)                     /* object still in use */
#define PLX_EEXIST (-EEXIST)                   /* already exists */
#define PLX_ENODEV (-ENODEV)                   /* no such device */
#define PLX_EINVAL (-EINVAL)                   /* invalid argument */
#define PLX_EMFILE (-EMFILE)                   /* out of file descriptors */
#define PLX_ENOSPC (-ENOSPC)                   /* bounded table is full */
#define PLX_ERANGE (-ERANGE)                   /* value out of range */
#define PLX_ENOSYS (-ENOSYS)                   /* not implemented here */
#define PLX_EPROTO (-EPROTO)                   /* protocol violation by peer */
#define PLX_EBADMSG (-EBADMSG)                 /* malformed bytes */
#define PLX_EOVERFLOW (-EOVERFLOW)             /* value too large */
#define PLX_EMSGSIZE (-EMSGSIZE)               /* message too long */
#define PLX_EPROTONOSUPPORT (-EPROTONOSUPPORT) /* version not supported */
#define PLX_ENOTSUP (-ENOTSUP)                 /* operation not supported */
#define PLX_EADDRINUSE (-EADDRINUSE)           /* address in use */
#define PLX_ENETDOWN (-ENETDOWN)               /* network is down */
#define PLX_ENETUNREACH (-ENETUNREACH)         /* network unreachable */
#define PLX_ECONNABORTED (-ECONNABORTED)       /* connection aborted */
#define PLX_ECONNRESET (-ECONNRESET)           /* connection reset / peer restarted */
#define PLX_ENOBUFS (-ENOBUFS)                 /* no buffer space */
#define PLX_ENOTCONN (-ENOTCONN)               /* not connected */
#define PLX_ESHUTDOWN (-ESHUTDOWN)             /* object is shutting down */
#define PLX_ETIMEDOUT (-ETIMEDOUT)             /* timed out */
#define PLX_ECONNREFUSED (-ECONNREFUSED)       /* connection refused */
#define PLX_EHOSTUNREACH (-EHOSTUNREACH)       /* host unreachable */
#define PLX_EALREADY (-EALREADY)               /* already in progress / done */
#define PLX_EINPROGRESS (-EINPROGRESS)         /* still in progress */
#define PLX_ECANCELED (-ECANCELED)             /* cancelled (or aborted by teardown) */
#define PLX_EKEYREJECTED (-EKEYREJECTED)       /* key unknown, stale or revoked */

/* pollux's own codes, below the errno range */
#define PLX_EUNAVAIL (-4096) /* transport or feature unavailable on this host */
#define PLX_EAUTH (-4097)    /* peer authentication failed */
#define PLX_EVERSION (-4098) /* peer speaks an incompatible wire version */
#define PLX_EREMOTE (-4099)  /* the remote side reported a failure */
#define PLX_EVERBS (-4100)   /* verbs error with no closer mapping */
#define PLX_ECUDA (-4101)    /* CUDA error with no closer mapping */
/* clang-format on */

/*
 * plx_strerror() - human-readable text for a status.
 * @code: any value returned by a pollux call (0, a count, or PLX_E*).
 *
 * Return: a static string; never NULL. Unknown negative codes give
 * "unknown error"; non-negative values give "success".
 * Thread context: any thread.
 */
PLX_API const char *plx_strerror(int code);

/*
 * plx_errname() - the symbolic name of a status, e.g. "PLX_EAGAIN".
 * @code: any value returned by a pollux call.
 *
 * Return: a static string; never NULL ("PLX_OK" for non-negative values,
 * "PLX_E?" for an unknown code). Thread context: any thread.
 */
PLX_API const char *plx_errname(int code);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_STATUS_H */
