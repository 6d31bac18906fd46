/* Name resolution that a deadline can bound. getaddrinfo() cannot be
 * interrupted, so it runs in a detached helper thread that reports on a
 * socketpair: the caller polls that fd (blocking mode) or hands it to an
 * event loop (SPEC 5.1). A caller that gives up simply drops its
 * reference; the thread finishes the lookup and frees what is left. */
#include "resolve.h"
#include "err.h"
#include "deadline.h"
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

struct smtp_resolve {
    pthread_mutex_t lock;
    int refs;                   /* the owner and the thread */
    int done;
    int gai;                    /* getaddrinfo's result code */
    int rfd, wfd;               /* the owner reads, the thread writes */
    struct addrinfo *res;
    char *host, *port;
};

static void resolve_destroy(struct smtp_resolve *r)
{
    if (r->res != NULL)
        freeaddrinfo(r->res);
    pthread_mutex_destroy(&r->lock);
    free(r->host);
    free(r->port);
    free(r);
}

/* Drops one reference; the last one frees. */
static void resolve_unref(struct smtp_resolve *r)
{
    int last;
    pthread_mutex_lock(&r->lock);
    last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last)
        resolve_destroy(r);
}

/* AI_ADDRCONFIG first; it hides ::1 on hosts with only loopback IPv6,
 * so a name it cannot place is asked again without it. */
static int lookup(const char *host, const char *port, struct addrinfo **res)
{
    struct addrinfo hints;
    int gai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    gai = getaddrinfo(host, port, &hints, res);
#ifdef EAI_ADDRFAMILY
    if (gai == EAI_ADDRFAMILY)
        gai = EAI_NONAME;
#endif
    if (gai == EAI_NONAME) {
        hints.ai_flags = 0;
        gai = getaddrinfo(host, port, &hints, res);
    }
    return gai;
}

static void *resolve_thread(void *arg)
{
    struct smtp_resolve *r = arg;
    struct addrinfo *res = NULL;
    int gai = lookup(r->host, r->port, &res);
    char one = 1;
    pthread_mutex_lock(&r->lock);
    r->res = res;
    r->gai = gai;
    r->done = 1;
    pthread_mutex_unlock(&r->lock);
    /* MSG_NOSIGNAL: the owner may have closed its end already. */
    (void)send(r->wfd, &one, 1, MSG_NOSIGNAL);
    close(r->wfd);
    resolve_unref(r);
    return NULL;
}

/* A numeric host needs no thread: getaddrinfo answers without I/O. */
static int numeric(const char *host, const char *port, struct addrinfo **res)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    return getaddrinfo(host, port, &hints, res) == 0;
}

int smtp_resolve_start(struct smtp_resolve **out, const char *host, const char *port,
                       char *err, size_t errlen)
{
    struct smtp_resolve *r;
    struct addrinfo *res = NULL;
    pthread_attr_t attr;
    sigset_t all, old;
    int sv[2], rc;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return SMTP_ENOMEM;
    r->rfd = r->wfd = -1;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return SMTP_ENOMEM;
    }
    r->refs = 1;
    if (numeric(host, port, &res)) {
        r->res = res;
        r->done = 1;
        *out = r;
        return SMTP_OK;
    }
    r->host = strdup(host);
    r->port = strdup(port);
    if (r->host == NULL || r->port == NULL) {
        resolve_destroy(r);
        return SMTP_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "cannot resolve %s: socketpair: %s", host, strerror(errno));
        resolve_destroy(r);
        return SMTP_EIO;
    }
    r->rfd = sv[0];
    r->wfd = sv[1];
    (void)fcntl(r->rfd, F_SETFL, fcntl(r->rfd, F_GETFL, 0) | O_NONBLOCK);
    r->refs = 2;
    /* The helper thread takes no signals: the host's handlers expect
     * them on its own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    {
        pthread_t tid;
        rc = pthread_create(&tid, &attr, resolve_thread, r);
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(r->rfd);
        close(r->wfd);
        resolve_destroy(r);
        snprintf(err, errlen, "cannot resolve %s: no thread: %s", host, strerror(rc));
        return SMTP_EIO;
    }
    *out = r;
    return SMTP_OK;
}

int smtp_resolve_fd(const struct smtp_resolve *r)
{
    return r->rfd;
}

int smtp_resolve_result(struct smtp_resolve *r, struct addrinfo **res,
                        char *err, size_t errlen)
{
    int done, gai;
    *res = NULL;
    pthread_mutex_lock(&r->lock);
    done = r->done;
    gai = r->gai;
    if (done && gai == 0) {
        *res = r->res;
        r->res = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    if (!done)
        return SMTP_EWANTREAD;
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", r->host ? r->host : "host",
                 gai_strerror(gai));
        return SMTP_EIO;
    }
    if (*res == NULL) {
        snprintf(err, errlen, "cannot resolve %s: answer already taken",
                 r->host ? r->host : "host");
        return SMTP_EUSAGE;
    }
    return SMTP_OK;
}

void smtp_resolve_free(struct smtp_resolve *r)
{
    if (r == NULL)
        return;
    if (r->rfd >= 0)
        close(r->rfd);
    r->rfd = -1;
    resolve_unref(r);
}

int smtp_resolve(const char *host, const char *port, int64_t deadline,
                 struct addrinfo **res, char *err, size_t errlen)
{
    struct smtp_resolve *r;
    int rc = smtp_resolve_start(&r, host, port, err, errlen);
    if (rc != SMTP_OK)
        return rc;
    while ((rc = smtp_resolve_result(r, res, err, errlen)) == SMTP_EWANTREAD) {
        rc = smtp_net_wait(r->rfd, POLLIN, deadline);
        if (rc != SMTP_OK) {
            snprintf(err, errlen, "cannot resolve %s: %s", host,
                     rc == SMTP_ETIMEOUT ? "timed out" : "poll error");
            break;
        }
    }
    smtp_resolve_free(r);
    return rc;
}
