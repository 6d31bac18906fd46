/* Sockets with deadlines, name resolution included (resolve.c). */
#include "net.h"
#include "resolve.h"
#include "err.h"
#include "deadline.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

int smtp_net_wait(int fd, short events, int64_t deadline)
{
    if (deadline == SMTP_NOWAIT)
        return (events & POLLOUT) ? SMTP_EWANTWRITE : SMTP_EWANTREAD;
    for (;;) {
        struct pollfd pfd;
        int left = smtp_deadline_left_ms(deadline), rc;
        if (left == 0)
            return SMTP_ETIMEOUT;
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, left);
        if (rc > 0)
            return SMTP_OK;
        if (rc == 0)
            return SMTP_ETIMEOUT;
        if (errno != EINTR)
            return SMTP_EIO;
    }
}

int smtp_net_local_literal(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return SMTP_EIO;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return SMTP_EUSAGE;
    if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
        return SMTP_EIO;
    snprintf(buf, len, ss.ss_family == AF_INET ? "[%s]" : "[IPv6:%s]", host);
    return SMTP_OK;
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Binds to local_address (any port) for the given family. */
static int bind_local(int fd, int family, const char *local_address)
{
    struct addrinfo hints, *res = NULL;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if (getaddrinfo(local_address, NULL, &hints, &res) != 0 || res == NULL)
        return -1;
    rc = bind(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return rc;
}

/* One non-blocking connect attempt, finished before attempt_deadline. */
static int connect_one(int fd, const struct sockaddr *addr, socklen_t len,
                       int64_t attempt_deadline)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return errno;
    if (smtp_net_wait(fd, POLLOUT, attempt_deadline) != SMTP_OK)
        return ETIMEDOUT;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return errno;
    return soerr;
}

static int connect_unix(int *out, const char *path, int64_t deadline,
                        char *err, size_t errlen)
{
    struct sockaddr_un sun;
    int fd, e;
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return SMTP_EUSAGE;
    }
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || set_nonblocking(fd) < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return SMTP_EIO;
    }
    e = connect_one(fd, (struct sockaddr *)&sun, sizeof sun, deadline);
    if (e != 0) {
        close(fd);
        snprintf(err, errlen, "connect to %s: %s", path, strerror(e));
        return e == ETIMEDOUT ? SMTP_ETIMEOUT : SMTP_EIO;
    }
    *out = fd;
    return SMTP_OK;
}

int smtp_net_connect(int *out, const char *host, const char *port,
                     const char *local_address, int64_t deadline,
                     char *err, size_t errlen)
{
    struct addrinfo *res = NULL, *ai;
    int rc, count = 0, tried = 0, last_err = 0, timed_out = 0;
    char last_addr[INET6_ADDRSTRLEN + 8] = "";

    *out = -1;
    if (host[0] == '/')
        return connect_unix(out, host, deadline, err, errlen);
    rc = smtp_resolve(host, port, deadline, &res, err, errlen);
    if (rc != SMTP_OK)
        return rc;
    for (ai = res; ai != NULL; ai = ai->ai_next)
        count++;
    for (ai = res; ai != NULL; ai = ai->ai_next, tried++) {
        int fd, e, one = 1, remaining = count - tried;
        int64_t now = smtp_now_ms(), attempt = deadline;
        if (deadline > SMTP_NO_DEADLINE && now >= deadline) {
            timed_out = 1;
            break;
        }
        /* Give each remaining address an equal share, at least 1 s. */
        if (deadline > SMTP_NO_DEADLINE && remaining > 1) {
            int64_t share = (deadline - now) / remaining;
            if (share < 1000)
                share = 1000;
            if (now + share < deadline)
                attempt = now + share;
        }
        getnameinfo(ai->ai_addr, ai->ai_addrlen, last_addr, sizeof last_addr,
                    NULL, 0, NI_NUMERICHOST);
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        if (set_nonblocking(fd) < 0
            || (local_address != NULL && bind_local(fd, ai->ai_family, local_address) < 0)) {
            last_err = errno ? errno : EADDRNOTAVAIL;
            close(fd);
            continue;
        }
        e = connect_one(fd, ai->ai_addr, ai->ai_addrlen, attempt);
        if (e == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(res);
            *out = fd;
            return SMTP_OK;
        }
        close(fd);
        last_err = e;
        if (e == ETIMEDOUT)
            timed_out = 1;
    }
    freeaddrinfo(res);
    if (timed_out && (deadline <= SMTP_NO_DEADLINE || smtp_now_ms() >= deadline)) {
        snprintf(err, errlen, "connect to %s port %s timed out", host, port);
        return SMTP_ETIMEOUT;
    }
    snprintf(err, errlen, "connect to %s port %s%s%s%s: %s", host, port,
             last_addr[0] ? " (" : "", last_addr, last_addr[0] ? ")" : "",
             strerror(last_err ? last_err : ECONNREFUSED));
    return SMTP_EIO;
}

int smtp_net_sendv(int fd, struct iovec *iov, int iovcnt, int64_t deadline,
                   char *err, size_t errlen)
{
    while (iovcnt > 0) {
        struct msghdr msg;
        ssize_t n;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)(iovcnt > 1024 ? 1024 : iovcnt);
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            int rc;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                snprintf(err, errlen, "send: %s", strerror(errno));
                return (errno == EPIPE || errno == ECONNRESET) ? SMTP_ECLOSED : SMTP_EIO;
            }
            rc = smtp_net_wait(fd, POLLOUT, deadline);
            if (rc != SMTP_OK) {
                snprintf(err, errlen, "send: %s", smtp_strerror(rc));
                return rc;
            }
            continue;
        }
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return SMTP_OK;
}

int smtp_net_recv(int fd, void *buf, size_t cap, size_t *got, int64_t deadline,
                  char *err, size_t errlen)
{
    *got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        int rc;
        if (n > 0) {
            *got = (size_t)n;
            return SMTP_OK;
        }
        if (n == 0) {
            snprintf(err, errlen, "connection closed by peer");
            return SMTP_ECLOSED;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(err, errlen, "receive: %s", strerror(errno));
            return errno == ECONNRESET ? SMTP_ECLOSED : SMTP_EIO;
        }
        rc = smtp_net_wait(fd, POLLIN, deadline);
        if (rc != SMTP_OK) {
            if (!smtp_is_want(rc))
                snprintf(err, errlen, "receive: %s", smtp_strerror(rc));
            return rc;
        }
    }
}

int smtp_net_connect_start(int *out, const char *addr, const char *port,
                           const char *local_address, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_un sun;
    const struct sockaddr *sa;
    socklen_t salen;
    int fd, family;

    *out = -1;
    if (addr[0] == '/') {
        if (strlen(addr) >= sizeof sun.sun_path) {
            snprintf(err, errlen, "socket path too long: %s", addr);
            return SMTP_EUSAGE;
        }
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, addr, strlen(addr) + 1);
        sa = (const struct sockaddr *)&sun;
        salen = sizeof sun;
        family = AF_UNIX;
    } else {
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        if (getaddrinfo(addr, port, &hints, &res) != 0 || res == NULL) {
            snprintf(err, errlen, "not a numeric address and port: %s port %s", addr, port);
            return SMTP_EUSAGE;
        }
        sa = res->ai_addr;
        salen = res->ai_addrlen;
        family = res->ai_family;
    }
    fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0 || set_nonblocking(fd) < 0
        || (local_address != NULL && family != AF_UNIX
            && bind_local(fd, family, local_address) < 0)) {
        int e = errno ? errno : EADDRNOTAVAIL;
        if (fd >= 0)
            close(fd);
        if (res != NULL)
            freeaddrinfo(res);
        snprintf(err, errlen, "connect to %s port %s: %s", addr, port, strerror(e));
        return SMTP_EIO;
    }
    *out = fd;
    if (connect(fd, sa, salen) == 0) {
        char label[96];
        if (res != NULL)
            freeaddrinfo(res);
        snprintf(label, sizeof label, "%s port %s", addr, port);
        return smtp_net_connect_finish(fd, label, err, errlen);
    }
    if (res != NULL)
        freeaddrinfo(res);
    if (errno == EINPROGRESS || errno == EINTR)
        return SMTP_EWANTWRITE;
    snprintf(err, errlen, "connect to %s port %s: %s", addr, port, strerror(errno));
    return SMTP_EIO;
}

int smtp_net_connect_finish(int fd, const char *label, char *err, size_t errlen)
{
    int soerr = 0, one = 1;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr != 0) {
        snprintf(err, errlen, "connect to %s: %s", label, strerror(soerr));
        return SMTP_EIO;
    }
    /* Fails harmlessly on a UNIX socket. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return SMTP_OK;
}

int smtp_net_send_some(int fd, const void *buf, size_t len, size_t *sent,
                       char *err, size_t errlen)
{
    *sent = 0;
    while (*sent < len) {
        ssize_t n = send(fd, (const char *)buf + *sent, len - *sent, MSG_NOSIGNAL);
        if (n >= 0) {
            *sent += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return SMTP_EWANTWRITE;
        snprintf(err, errlen, "send: %s", strerror(errno));
        return (errno == EPIPE || errno == ECONNRESET) ? SMTP_ECLOSED : SMTP_EIO;
    }
    return SMTP_OK;
}
