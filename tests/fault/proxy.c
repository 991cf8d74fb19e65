/* SPDX-License-Identifier: MIT */
/*
 * The fault-injecting TCP proxy (proxy.h has the contract).
 *
 * Each connection has two directions; each direction has a buffer of
 * bytes read from its source and not yet written to its destination. A
 * step polls every socket once, reads what arrived, and then "pumps"
 * every direction: it computes how many buffered bytes the direction's
 * fault lets through now (limit()), sends them, and fires the fault at its
 * offset. All state is under one mutex so that the thread mode and the
 * control functions can share it; poll() runs without it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fault/proxy.h"

#define BUF_CAP (64u * 1024)
#define DELAY_MAX 256 /* delayed chunks held per direction */
#define ACCEPT_BURST 16

struct chunk {
	uint64_t start, end; /* stream offsets */
	uint64_t release;    /* ns */
};

struct dir {
	struct fproxy_fault f;
	uint8_t *buf;
	size_t head, tail; /* buffered bytes: buf[head, tail) */
	uint64_t rd;	   /* stream bytes read from the source */
	uint64_t wr;	   /* stream bytes written to the destination */
	int eof;	   /* the source sent FIN */
	int shut;	   /* FIN passed on to the destination */
	int blocked;	   /* the last send() hit EAGAIN: wait for POLLOUT */
	int fired;
	uint64_t until; /* STALL: end; DRIBBLE: earliest next byte */
	struct chunk ch[DELAY_MAX];
	unsigned int ch_head, ch_n;
	uint8_t *cap; /* capture, or NULL */
	size_t cap_len, cap_max;
};

struct conn {
	int fd[2]; /* [0] the connecting side, [1] the target; -1: closed */
	int connecting;
	enum fproxy_end end;
	struct dir d[2]; /* FPROXY_C2S reads fd[0], FPROXY_S2C reads fd[1] */
	struct pollfd *pfd[2];
};

struct fproxy {
	pthread_mutex_t mu;
	int lfd;
	int wake[2];
	uint16_t target_port;
	struct fproxy_faults next;
	int keep;
	size_t capture;
	struct conn **conns; /* kept, or live only */
	size_t nconns, capconns;
	struct fproxy_stats st;
	struct pollfd *pfds;
	size_t cappfds;
	pthread_t thread;
	int has_thread, stop;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void close_fd(int *fd, int rst)
{
	if (*fd < 0)
		return;
	if (rst) {
		struct linger l = {.l_onoff = 1, .l_linger = 0};

		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(*fd);
	*fd = -1;
}

static void conn_end(struct fproxy *p, struct conn *c, enum fproxy_end why,
		     int rst)
{
	if (c->end != FPROXY_OPEN)
		return;
	c->end = why;
	close_fd(&c->fd[0], rst);
	close_fd(&c->fd[1], rst);
	for (int i = 0; i < 2; i++) {
		free(c->d[i].buf);
		c->d[i].buf = NULL;
	}
	p->st.live--;
}

static void conn_free(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		free(c->d[i].buf);
		free(c->d[i].cap);
	}
	free(c);
}

/* ---- set-up -------------------------------------------------------------- */

int fproxy_create(struct fproxy **out, uint16_t target_port, uint16_t *port_out)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct fproxy *p = calloc(1, sizeof(*p));
	int one = 1, rc;

	if (!p)
		return -ENOMEM;
	p->target_port = target_port;
	p->wake[0] = p->wake[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->lfd < 0)
		goto fail;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(p->lfd, 128) ||
	    getsockname(p->lfd, (struct sockaddr *)&a, &alen))
		goto fail;
	if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC))
		goto fail;
	*port_out = ntohs(a.sin_port);
	*out = p;
	return 0;
fail:
	rc = -errno;
	if (p->lfd >= 0)
		close(p->lfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return rc;
}

static void wake(struct fproxy *p)
{
	char c = 1;

	if (write(p->wake[1], &c, 1) < 0) {
		/* full: a wake-up is already pending */
	}
}

void fproxy_set_faults(struct fproxy *p, const struct fproxy_faults *f)
{
	pthread_mutex_lock(&p->mu);
	if (f)
		p->next = *f;
	else
		memset(&p->next, 0, sizeof(p->next));
	pthread_mutex_unlock(&p->mu);
}

void fproxy_keep(struct fproxy *p, size_t capture)
{
	pthread_mutex_lock(&p->mu);
	p->keep = 1;
	p->capture = capture;
	pthread_mutex_unlock(&p->mu);
}

void fproxy_stats(struct fproxy *p, struct fproxy_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	pthread_mutex_unlock(&p->mu);
}

/* Kept connections only: with keep off, conns[] holds live ones, whose
 * indices move as they close. */
int fproxy_conn_info(struct fproxy *p, unsigned int idx,
		     struct fproxy_conn_info *out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&p->mu);
	if (p->keep && idx < p->nconns) {
		struct conn *c = p->conns[idx];

		for (int i = 0; i < 2; i++) {
			out->bytes[i] = c->d[i].wr;
			out->fired[i] = c->d[i].fired;
		}
		out->end = c->end;
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

const uint8_t *fproxy_capture(struct fproxy *p, unsigned int idx, int dir,
			      size_t *len)
{
	const uint8_t *b = NULL;

	*len = 0;
	pthread_mutex_lock(&p->mu);
	if (p->keep && idx < p->nconns && (dir == 0 || dir == 1)) {
		b = p->conns[idx]->d[dir].cap;
		*len = p->conns[idx]->d[dir].cap_len;
	}
	pthread_mutex_unlock(&p->mu);
	return b;
}

void fproxy_drop_all(struct fproxy *p, int rst)
{
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->nconns; i++)
		conn_end(p, p->conns[i], FPROXY_FAULT, rst);
	pthread_mutex_unlock(&p->mu);
	if (p->has_thread)
		wake(p);
}

/* ---- accepting ----------------------------------------------------------- */

static int add_conn(struct fproxy *p, struct conn *c)
{
	if (p->nconns == p->capconns) {
		size_t n = p->capconns ? 2 * p->capconns : 16;
		struct conn **v = realloc(p->conns, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->conns = v;
		p->capconns = n;
	}
	p->conns[p->nconns++] = c;
	return 0;
}

static void accept_one(struct fproxy *p, int cfd)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct conn *c = calloc(1, sizeof(*c));
	int sfd;

	if (!c)
		goto fail;
	c->fd[0] = cfd;
	c->fd[1] = -1;
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->d[i];

		d->f = p->next.dir[i];
		if (d->f.kind == FPROXY_CORRUPT && !d->f.mask)
			d->f.mask = 0xff;
		d->buf = malloc(BUF_CAP);
		if (!d->buf)
			goto fail;
		if (p->keep && p->capture) {
			d->cap = malloc(p->capture);
			if (!d->cap)
				goto fail;
			d->cap_max = p->capture;
		}
	}
	sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd < 0)
		goto fail;
	c->fd[1] = sfd;
	set_nodelay(cfd);
	set_nodelay(sfd);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(p->target_port);
	if (connect(sfd, (struct sockaddr *)&a, sizeof(a))) {
		if (errno != EINPROGRESS)
			goto fail;
		c->connecting = 1;
	}
	if (add_conn(p, c))
		goto fail;
	p->st.accepted++;
	p->st.live++;
	return;
fail:
	/* the connecting side sees a reset, as with a refused target */
	close_fd(&cfd, 1);
	if (c) {
		close_fd(&c->fd[1], 1);
		conn_free(c);
	}
}

static void accept_all(struct fproxy *p)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		int fd = accept4(p->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		accept_one(p, fd);
	}
}

/* ---- forwarding ---------------------------------------------------------- */

static int can_read(const struct dir *d)
{
	return !d->eof && d->tail - d->head < BUF_CAP && d->ch_n < DELAY_MAX;
}

/* The fault window [at, at + len) of DELAY and DRIBBLE. */
static int in_window(const struct fproxy_fault *f, uint64_t off)
{
	return off >= f->at && (!f->len || off - f->at < f->len);
}

static void dir_read(struct fproxy *p, struct conn *c, int i)
{
	struct dir *d = &c->d[i];
	uint64_t t = 0;

	while (can_read(d)) {
		ssize_t n;

		if (d->head == d->tail)
			d->head = d->tail = 0;
		else if (d->tail == BUF_CAP) {
			memmove(d->buf, d->buf + d->head, d->tail - d->head);
			d->tail -= d->head;
			d->head = 0;
		}
		n = recv(c->fd[i], d->buf + d->tail, BUF_CAP - d->tail, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			conn_end(p, c, FPROXY_ERROR, 1);
			return;
		}
		if (n == 0) {
			d->eof = 1;
			return;
		}
		if (d->cap && d->cap_len < d->cap_max) {
			size_t k =
				min_u64((uint64_t)n, d->cap_max - d->cap_len);

			memcpy(d->cap + d->cap_len, d->buf + d->tail, k);
			d->cap_len += k;
		}
		if (d->f.kind == FPROXY_CORRUPT && !d->fired &&
		    d->f.at >= d->rd && d->f.at < d->rd + (uint64_t)n) {
			d->buf[d->tail + (d->f.at - d->rd)] ^= d->f.mask;
			d->fired = 1;
			p->st.fired++;
		}
		if (d->f.kind == FPROXY_DELAY) {
			uint64_t s = d->rd > d->f.at ? d->rd : d->f.at;
			uint64_t e = d->rd + (uint64_t)n;

			if (d->f.len && e > d->f.at + d->f.len)
				e = d->f.at + d->f.len;
			if (s < e) {
				struct chunk *k =
					&d->ch[(d->ch_head + d->ch_n) %
					       DELAY_MAX];

				if (!t)
					t = now_ns();
				k->start = s;
				k->end = e;
				k->release = t + d->f.ns;
				d->ch_n++;
				if (!d->fired) {
					d->fired = 1;
					p->st.fired++;
				}
			}
		}
		d->tail += (size_t)n;
		d->rd += (uint64_t)n;
	}
}

/*
 * How many buffered bytes the fault lets through at @now; *@deadline is
 * lowered to when that may change without a socket event.
 */
static uint64_t limit(struct fproxy *p, struct dir *d, uint64_t now,
		      uint64_t *deadline)
{
	const struct fproxy_fault *f = &d->f;
	uint64_t n = d->tail - d->head;

	switch (f->kind) {
	case FPROXY_CLOSE:
	case FPROXY_RST:
		return f->at > d->wr ? min_u64(n, f->at - d->wr) : 0;
	case FPROXY_STALL:
		if (d->wr < f->at)
			return min_u64(n, f->at - d->wr);
		if (!d->fired) {
			d->fired = 1;
			p->st.fired++;
			d->until = f->ns > UINT64_MAX - now ? UINT64_MAX :
							      now + f->ns;
		}
		if (now < d->until) {
			*deadline = min_u64(*deadline, d->until);
			return 0;
		}
		return n;
	case FPROXY_DELAY:
		while (d->ch_n && d->ch[d->ch_head].release <= now) {
			d->ch_head = (d->ch_head + 1) % DELAY_MAX;
			d->ch_n--;
		}
		if (!d->ch_n)
			return n;
		*deadline = min_u64(*deadline, d->ch[d->ch_head].release);
		return d->ch[d->ch_head].start > d->wr ?
			       min_u64(n, d->ch[d->ch_head].start - d->wr) :
			       0;
	case FPROXY_DRIBBLE:
		if (!in_window(f, d->wr))
			return d->wr < f->at ? min_u64(n, f->at - d->wr) : n;
		if (now < d->until) {
			*deadline = min_u64(*deadline, d->until);
			return 0;
		}
		return min_u64(n, 1);
	default:
		return n;
	}
}

/* The CLOSE / RST fault fires once its offset has been forwarded. */
static int drop_due(const struct dir *d)
{
	return (d->f.kind == FPROXY_CLOSE || d->f.kind == FPROXY_RST) &&
	       d->wr >= d->f.at;
}

static void dir_pump(struct fproxy *p, struct conn *c, int i, uint64_t now,
		     uint64_t *deadline)
{
	struct dir *d = &c->d[i];
	int out = c->fd[1 - i];

	while (c->end == FPROXY_OPEN && !c->connecting) {
		uint64_t n;
		ssize_t k;

		if (drop_due(d)) {
			d->fired = 1;
			p->st.fired++;
			conn_end(p, c, FPROXY_FAULT, d->f.kind == FPROXY_RST);
			return;
		}
		n = limit(p, d, now, deadline);
		if (!n || d->blocked)
			break;
		k = send(out, d->buf + d->head, (size_t)n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			d->blocked = 1;
			break;
		}
		if (k < 0) {
			conn_end(p, c, FPROXY_ERROR, 1);
			return;
		}
		d->head += (size_t)k;
		d->wr += (uint64_t)k;
		p->st.bytes[i] += (uint64_t)k;
		if (d->f.kind == FPROXY_DRIBBLE &&
		    in_window(&d->f, d->wr - 1)) {
			if (!d->fired) {
				d->fired = 1;
				p->st.fired++;
			}
			d->until = d->f.ns ? now + d->f.ns : 0;
			break; /* one byte per step */
		}
	}
	if (c->end == FPROXY_OPEN && !c->connecting && d->eof && !d->shut &&
	    d->head == d->tail) {
		shutdown(out, SHUT_WR);
		d->shut = 1;
	}
}

static void conn_step(struct fproxy *p, struct conn *c, uint64_t now,
		      uint64_t *deadline)
{
	if (c->connecting) {
		short re = c->pfd[1] ? c->pfd[1]->revents : 0;
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(re & (POLLOUT | POLLERR | POLLHUP)))
			goto read_side;
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) ||
		    err) {
			conn_end(p, c, FPROXY_NOTARGET, 1);
			return;
		}
		c->connecting = 0;
	}
read_side:
	for (int i = 0; i < 2 && c->end == FPROXY_OPEN; i++) {
		short re = c->pfd[i] ? c->pfd[i]->revents : 0;

		if (re & (POLLIN | POLLHUP | POLLERR))
			dir_read(p, c, i);
		if (re & (POLLOUT | POLLERR | POLLHUP))
			c->d[1 - i].blocked = 0;
	}
	for (int i = 0; i < 2 && c->end == FPROXY_OPEN; i++)
		dir_pump(p, c, i, now, deadline);
	if (c->end == FPROXY_OPEN && c->d[0].shut && c->d[1].shut)
		conn_end(p, c, FPROXY_EOF, 0);
}

/* Drop closed connections that nobody asked to keep. */
static void forget_closed(struct fproxy *p)
{
	size_t j = 0;

	if (p->keep)
		return;
	for (size_t i = 0; i < p->nconns; i++) {
		if (p->conns[i]->end == FPROXY_OPEN)
			p->conns[j++] = p->conns[i];
		else
			conn_free(p->conns[i]);
	}
	p->nconns = j;
}

/* Build the poll set under the lock. Return the number of entries. */
static size_t build_pollset(struct fproxy *p)
{
	size_t n = 0, need = 2 + 2 * p->nconns;

	if (need > p->cappfds) {
		struct pollfd *v = realloc(p->pfds, need * sizeof(*v));

		if (!v)
			return 0;
		p->pfds = v;
		p->cappfds = need;
	}
	p->pfds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
	p->pfds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
	for (size_t i = 0; i < p->nconns; i++) {
		struct conn *c = p->conns[i];

		c->pfd[0] = c->pfd[1] = NULL;
		if (c->end != FPROXY_OPEN)
			continue;
		for (int s = 0; s < 2; s++) {
			short ev = 0;

			if (can_read(&c->d[s]) && !(s == 1 && c->connecting))
				ev |= POLLIN;
			/* socket s receives direction 1 - s */
			if (c->d[1 - s].blocked || (s == 1 && c->connecting))
				ev |= POLLOUT;
			/*
			 * Nothing wanted: leave it out, or a socket shut both
			 * ways would report POLLHUP for ever (a spinning
			 * thread). Errors show on the next recv() or send().
			 */
			p->pfds[n] = (struct pollfd){.fd = ev ? c->fd[s] : -1,
						     .events = ev};
			c->pfd[s] = &p->pfds[n++];
		}
	}
	return n;
}

/* Earliest timer of the open connections (UINT64_MAX: none). */
static uint64_t next_deadline(struct fproxy *p, uint64_t now)
{
	uint64_t dl = UINT64_MAX;

	for (size_t i = 0; i < p->nconns; i++) {
		struct conn *c = p->conns[i];

		if (c->end != FPROXY_OPEN)
			continue;
		for (int k = 0; k < 2; k++)
			(void)limit(p, &c->d[k], now, &dl);
	}
	return dl;
}

static int step(struct fproxy *p, int timeout_ms)
{
	uint64_t now = now_ns(), dl;
	size_t n;
	int rc;

	pthread_mutex_lock(&p->mu);
	n = build_pollset(p);
	dl = next_deadline(p, now);
	pthread_mutex_unlock(&p->mu);
	if (!n)
		return -ENOMEM;
	if (dl != UINT64_MAX) {
		uint64_t ms = dl > now ? (dl - now + 999999) / 1000000 : 0;

		if (timeout_ms < 0 || ms < (uint64_t)timeout_ms)
			timeout_ms = (int)ms;
	}
	/*
	 * The poll set points into p->pfds, which only this function (one
	 * caller at a time: the thread or the test) rebuilds; control calls
	 * under the lock never touch it.
	 */
	rc = poll(p->pfds, n, timeout_ms);
	if (rc < 0 && errno != EINTR)
		return -errno;
	pthread_mutex_lock(&p->mu);
	if (p->pfds[0].revents & POLLIN) {
		char buf[64];

		while (read(p->wake[0], buf, sizeof(buf)) > 0) {
		}
	}
	if (p->pfds[1].revents & POLLIN)
		accept_all(p);
	now = now_ns();
	dl = UINT64_MAX;
	for (size_t i = 0; i < p->nconns; i++) {
		struct conn *c = p->conns[i];

		if (c->end == FPROXY_OPEN)
			conn_step(p, c, now, &dl);
		c->pfd[0] = c->pfd[1] = NULL;
	}
	forget_closed(p);
	pthread_mutex_unlock(&p->mu);
	return rc < 0 ? 0 : rc;
}

int fproxy_step(struct fproxy *p, int timeout_ms)
{
	return step(p, timeout_ms);
}

static void *thread_main(void *arg)
{
	struct fproxy *p = arg;

	for (;;) {
		int stop;

		pthread_mutex_lock(&p->mu);
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		step(p, 100);
	}
	return NULL;
}

int fproxy_start_thread(struct fproxy *p)
{
	int rc = pthread_create(&p->thread, NULL, thread_main, p);

	if (rc)
		return -rc;
	p->has_thread = 1;
	return 0;
}

void fproxy_destroy(struct fproxy *p)
{
	if (!p)
		return;
	if (p->has_thread) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_mutex_unlock(&p->mu);
		wake(p);
		pthread_join(p->thread, NULL);
	}
	for (size_t i = 0; i < p->nconns; i++) {
		conn_end(p, p->conns[i], FPROXY_FAULT, 0);
		conn_free(p->conns[i]);
	}
	free(p->conns);
	free(p->pfds);
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
