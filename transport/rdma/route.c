/* SPDX-License-Identifier: MIT */
/*
 * The peer GID's route and neighbour, asked of the kernel over rtnetlink
 * before a QP is taken to RTR (route.h says why). What the kernel's
 * resolution for the modify does, and what this file asks in its place:
 *
 *   - link-local and multicast GIDs carry their MAC address: nothing to
 *     resolve;
 *   - otherwise the GID is an IPv4 (::ffff:a.b.c.d) or IPv6 address; the
 *     route to it is looked up from our GID's address, out of the netdev
 *     behind our GID (RTM_GETROUTE with RTA_SRC, RTA_DST, RTA_OIF);
 *   - a local route: a modify returns at once if the address is one of
 *     that netdev's own (RTM_GETADDR), and waits, then fails, if it
 *     belongs to another netdev (measured in the soft-RoCE guest);
 *   - a unicast route out of that netdev: the neighbour of its next hop
 *     (the gateway, or the address itself) must be valid (RTM_GETNEIGH);
 *   - anything else (an error, another netdev, a blackhole): the kernel
 *     waits, then fails.
 *
 * Each question is one request and one answer on a non-blocking
 * NETLINK_ROUTE socket: the kernel answers inside the send, so nothing
 * here waits. The socket is opened on first use and kept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "reactor/internal.h"
#include "transport/rdma/rdma_internal.h"
#include "transport/rdma/route.h"

_Static_assert(PLX__GID_STR == INET6_ADDRSTRLEN, "PLX__GID_STR");

/* neighbour states in which the kernel has the MAC address (the
 * kernel's own NUD_VALID, which is not in its UAPI headers) */
#define NUD_HAS_MAC                                                            \
	(NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE |   \
	 NUD_DELAY)

/* the UDP port a kick is sent to: discard (RFC 863) */
#define KICK_PORT 9

struct nlreq {
	struct nlmsghdr h;
	union {
		struct rtmsg rt;
		struct ndmsg nd;
		struct ifaddrmsg ifa;
	} u;
	uint8_t attrs[64];
};

/* An address: family AF_INET (4 bytes) or AF_INET6 (16). */
struct addr {
	int family;
	uint8_t len;
	uint8_t b[16];
};

static void gid_addr(const uint8_t gid[16], struct addr *a)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
					     0, 0, 0, 0, 0xff, 0xff};

	if (!memcmp(gid, v4mapped, 12)) {
		a->family = AF_INET;
		a->len = 4;
		memcpy(a->b, gid + 12, 4);
	} else {
		a->family = AF_INET6;
		a->len = 16;
		memcpy(a->b, gid, 16);
	}
}

static void add_attr(struct nlreq *q, uint16_t type, const void *data,
		     uint16_t len)
{
	struct rtattr *ra =
		(struct rtattr *)((uint8_t *)q + NLMSG_ALIGN(q->h.nlmsg_len));

	ra->rta_type = type;
	ra->rta_len = (uint16_t)RTA_LENGTH(len);
	memcpy(RTA_DATA(ra), data, len);
	q->h.nlmsg_len = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(ra->rta_len);
}

static int nl_open(struct plx__rdma *d)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};

	if (d->nl_fd >= 0)
		return 0;
	if (d->nl_failed)
		return PLX_EUNAVAIL;
	d->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			  NETLINK_ROUTE);
	if (d->nl_fd >= 0 &&
	    bind(d->nl_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	plx__log(d->x, PLX_LOG_WARN,
		 "rdma: no rtnetlink socket (%s): a peer's GID is resolved by "
		 "the modify to RTR itself, which may hold the owner thread "
		 "about a second",
		 strerror(errno));
	if (d->nl_fd >= 0)
		close(d->nl_fd);
	d->nl_fd = -1;
	d->nl_failed = true;
	return PLX_EUNAVAIL;
}

/*
 * Send @q and read the answer into @buf. For a plain request: return its
 * length (one message), or the negative errno the kernel answered. For a
 * dump (NLM_F_DUMP), @each is called on every message until the end.
 * PLX_EUNAVAIL: the socket could not be used.
 */
static int nl_ask(struct plx__rdma *d, struct nlreq *q, uint8_t *buf,
		  size_t cap,
		  bool (*each)(const struct nlmsghdr *, const void *),
		  const void *arg)
{
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	uint32_t seq = ++d->nl_seq;
	bool dump = q->h.nlmsg_flags & NLM_F_DUMP;
	bool found = false;

	if (nl_open(d))
		return PLX_EUNAVAIL;
	q->h.nlmsg_seq = seq;
	if (sendto(d->nl_fd, q, q->h.nlmsg_len, 0, (struct sockaddr *)&to,
		   sizeof(to)) != (ssize_t)q->h.nlmsg_len)
		return PLX_EUNAVAIL;
	for (;;) {
		ssize_t n = recv(d->nl_fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
		const struct nlmsghdr *h;

		/* the kernel answers inside the send; a dump's next part is
		 * made inside the recv, at most @cap bytes (larger: cut) */
		if (n < 0 || (size_t)n > cap)
			return PLX_EUNAVAIL;
		/* NLMSG_OK / NLMSG_NEXT, without their signed length */
		for (size_t off = 0; off + sizeof(*h) <= (size_t)n;
		     off += NLMSG_ALIGN(h->nlmsg_len)) {
			h = (const struct nlmsghdr *)(buf + off);
			if (h->nlmsg_len < sizeof(*h) ||
			    h->nlmsg_len > (size_t)n - off)
				break;
			if (h->nlmsg_seq != seq)
				continue; /* an answer to an older question */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : 0;
			}
			if (!dump) {
				memmove(buf, h, h->nlmsg_len);
				return (int)h->nlmsg_len;
			}
			if (h->nlmsg_type == NLMSG_DONE)
				return found ? 1 : 0;
			if (!found && each(h, arg))
				found = true;
		}
	}
}

/* An address of one netdev, as addr_is() looks for it. */
struct own {
	struct addr a;
	uint32_t ifindex;
};

/* Is @h (from an RTM_GETADDR dump) the address in @arg, on its netdev? */
static bool addr_is(const struct nlmsghdr *h, const void *arg)
{
	const struct own *o = arg;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *ra = IFA_RTA(ifa);
	int left = (int)IFA_PAYLOAD(h);

	if (h->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != o->a.family ||
	    ifa->ifa_index != o->ifindex)
		return false;
	for (; RTA_OK(ra, left); ra = RTA_NEXT(ra, left))
		if ((ra->rta_type == IFA_LOCAL ||
		     ra->rta_type == IFA_ADDRESS) &&
		    RTA_PAYLOAD(ra) == o->a.len &&
		    !memcmp(RTA_DATA(ra), o->a.b, o->a.len))
			return true;
	return false;
}

/* Is @a one of the addresses of d->ifindex? 1 yes, 0 no, <0 no answer. */
static int own_addr(struct plx__rdma *d, const struct addr *a)
{
	struct own o = {.a = *a, .ifindex = d->ifindex};
	struct nlreq q;
	uint8_t buf[8192];

	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(q.u.ifa));
	q.h.nlmsg_type = RTM_GETADDR;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.u.ifa.ifa_family = (uint8_t)a->family;
	q.u.ifa.ifa_index = d->ifindex;
	return nl_ask(d, &q, buf, sizeof(buf), addr_is, &o);
}

/* The route to @dst from @src out of d->ifindex: its type, the netdev it
 * leaves by and its next hop (the gateway, else @dst). 0 or <0. */
static int route_get(struct plx__rdma *d, const struct addr *src,
		     const struct addr *dst, uint8_t *type, uint32_t *oif,
		     struct addr *hop)
{
	struct nlreq q;
	uint8_t buf[1024];
	const struct rtmsg *rt;
	const struct rtattr *ra;
	int n, left;

	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(q.u.rt));
	q.h.nlmsg_type = RTM_GETROUTE;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.u.rt.rtm_family = (uint8_t)dst->family;
	q.u.rt.rtm_dst_len = (uint8_t)(dst->len * 8);
	q.u.rt.rtm_src_len = (uint8_t)(src->len * 8);
	add_attr(&q, RTA_DST, dst->b, dst->len);
	add_attr(&q, RTA_SRC, src->b, src->len);
	add_attr(&q, RTA_OIF, &d->ifindex, sizeof(d->ifindex));
	n = nl_ask(d, &q, buf, sizeof(buf), NULL, NULL);
	if (n < 0)
		return n;
	if (((const struct nlmsghdr *)buf)->nlmsg_type != RTM_NEWROUTE)
		return PLX_EPROTO;
	rt = NLMSG_DATA((const struct nlmsghdr *)buf);
	*type = rt->rtm_type;
	*oif = 0;
	*hop = *dst;
	ra = RTM_RTA(rt);
	left = (int)RTM_PAYLOAD((const struct nlmsghdr *)buf);
	for (; RTA_OK(ra, left); ra = RTA_NEXT(ra, left)) {
		if (ra->rta_type == RTA_OIF && RTA_PAYLOAD(ra) == 4)
			memcpy(oif, RTA_DATA(ra), 4);
		else if (ra->rta_type == RTA_GATEWAY &&
			 RTA_PAYLOAD(ra) == dst->len)
			memcpy(hop->b, RTA_DATA(ra), dst->len);
	}
	return 0;
}

/* The state (NUD_*) of @hop's neighbour entry on d->ifindex; 0: none. */
static int neigh_state(struct plx__rdma *d, const struct addr *hop)
{
	struct nlreq q;
	uint8_t buf[1024];
	int n;

	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(q.u.nd));
	q.h.nlmsg_type = RTM_GETNEIGH;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.u.nd.ndm_family = (uint8_t)hop->family;
	q.u.nd.ndm_ifindex = (int)d->ifindex;
	add_attr(&q, NDA_DST, hop->b, hop->len);
	n = nl_ask(d, &q, buf, sizeof(buf), NULL, NULL);
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return n;
	if (((const struct nlmsghdr *)buf)->nlmsg_type != RTM_NEWNEIGH)
		return PLX_EPROTO;
	return ((const struct ndmsg *)NLMSG_DATA((const struct nlmsghdr *)buf))
		->ndm_state;
}

/* Make the kernel resolve the neighbour towards @dst: a datagram to its
 * discard port, out of d->ifindex, waits in the neighbour's queue while
 * the kernel asks for the MAC address (ARP, neighbour solicitation). */
static void kick(struct plx__rdma *d, const struct addr *dst)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in s4;
		struct sockaddr_in6 s6;
	} to;
	bool v4 = dst->family == AF_INET;
	/* IP_UNICAST_IF and IPV6_UNICAST_IF both take the ifindex in
	 * network byte order */
	uint32_t idx = htonl(d->ifindex);
	int fd = socket(dst->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);

	if (fd < 0)
		return;
	memset(&to, 0, sizeof(to));
	if (v4) {
		to.s4.sin_family = AF_INET;
		to.s4.sin_port = htons(KICK_PORT);
		memcpy(&to.s4.sin_addr, dst->b, 4);
	} else {
		to.s6.sin6_family = AF_INET6;
		to.s6.sin6_port = htons(KICK_PORT);
		memcpy(&to.s6.sin6_addr, dst->b, 16);
	}
	if (!setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6,
			v4 ? IP_UNICAST_IF : IPV6_UNICAST_IF, &idx,
			sizeof(idx)))
		(void)sendto(fd, NULL, 0, 0, &to.sa,
			     v4 ? sizeof(to.s4) : sizeof(to.s6));
	close(fd);
}

int plx__gid_check(struct plx__rdma *d, const uint8_t gid[16], bool kick_it)
{
	struct addr src, dst, hop;
	uint32_t oif;
	uint8_t type;
	int rc;

	if (!d->ifindex)
		return PLX__GID_READY; /* cannot ask */
	if ((gid[0] == 0xfe && (gid[1] & 0xc0) == 0x80) || gid[0] == 0xff)
		return PLX__GID_READY; /* link-local, multicast: MAC inside */
	gid_addr(d->info.gid, &src);
	gid_addr(gid, &dst);
	if (src.family != dst.family)
		return PLX_EHOSTUNREACH;
	rc = route_get(d, &src, &dst, &type, &oif, &hop);
	if (rc == PLX_EUNAVAIL)
		return PLX__GID_READY;
	if (rc)
		return PLX_EHOSTUNREACH;
	if (type == RTN_LOCAL) {
		/* ours: ready; another netdev's: refused; no answer: as
		 * before */
		return own_addr(d, &dst) == 0 ? PLX_EHOSTUNREACH :
						PLX__GID_READY;
	}
	if (type != RTN_UNICAST || oif != d->ifindex)
		return PLX_EHOSTUNREACH;
	rc = neigh_state(d, &hop);
	if (rc < 0)
		return PLX__GID_READY; /* no answer: as before */
	if (rc & NUD_HAS_MAC)
		return PLX__GID_READY;
	if (kick_it)
		kick(d, &dst);
	return PLX__GID_WAIT;
}

void plx__gid_str(const uint8_t gid[16], char *out)
{
	struct addr a;

	gid_addr(gid, &a);
	if (!inet_ntop(a.family, a.b, out, PLX__GID_STR))
		snprintf(out, PLX__GID_STR, "?");
}

void plx__gid_fini(struct plx__rdma *d)
{
	if (d->nl_fd >= 0)
		close(d->nl_fd);
	d->nl_fd = -1;
}
