/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for the load tests and the soak: what this process holds
 * (open file descriptors from /proc/self/fd, resident set size from
 * /proc/self/statm) and raising RLIMIT_NOFILE for a test that needs many
 * descriptors. Header-only; plain Linux, no pollux internals.
 */
#ifndef PLX_TEST_PROC_STATS_H
#define PLX_TEST_PROC_STATS_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* Open descriptors of this process (not counting the one used to list
 * them), or -1. */
static inline int proc_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* The highest open descriptor number of this process (not counting the
 * one used to list them), or -1. */
static inline int proc_fd_max(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int max = -1, self;

	if (!d)
		return -1;
	self = dirfd(d);
	while ((e = readdir(d))) {
		int fd = e->d_name[0] == '.' ? -1 : atoi(e->d_name);

		if (fd != self && fd > max)
			max = fd;
	}
	closedir(d);
	return max;
}

/* Resident set size in KiB (/proc/self/statm, second field), or -1. */
static inline long proc_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	if (resident < 0)
		return -1;
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Make sure at least @need descriptors may be open: raise the soft limit
 * (and the hard one, which needs CAP_SYS_RESOURCE) when it is lower.
 * Return 0, or -errno when the limit cannot be raised that far. */
static inline int proc_nofile_at_least(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	rl.rlim_cur = need;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		rl.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	return 0;
}

/* Set the soft RLIMIT_NOFILE to @soft (the hard limit is kept). Return
 * the previous soft limit, or 0 when it cannot be read or set. */
static inline rlim_t proc_nofile_set_soft(rlim_t soft)
{
	struct rlimit rl;
	rlim_t old;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	old = rl.rlim_cur;
	rl.rlim_cur = soft;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	return old;
}

#endif /* PLX_TEST_PROC_STATS_H */
