/* 'smtp.core.Conn': a connected socket with a deadline. It moves bytes,
 * reads whole replies through a ReplyParser, and encodes DATA straight into
 * its write buffer. TLS (tls.c) plugs in at conn_sendv/conn_recv, the only
 * two places that touch the socket, once conn:starttls() succeeds. Any
 * failure closes the connection: half a reply is never left behind on an
 * open socket (DESIGN D). */
#include "lsmtp.h"
#include "lreply.h"
#include "ldotstuff.h"
#include "ltls.h"
#include "lconn.h"
#include "net.h"
#include "membio.h"
#include "proxy.h"
#include "err.h"
#include "deadline.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 16384

struct lconn {
    int fd;             /* -1 once closed: the zero state */
    int64_t deadline;   /* absolute, ms on the monotonic clock; 0 = none */
    char *wbuf;         /* scratch for send_data, grown on demand */
    struct smtp_tls *tls;   /* NULL until starttls succeeds */
    size_t wcap;
    /* No-wait mode (SPEC 5.1): an event loop waits, C never does. Every
     * operation then returns nil, "want", "r"|"w" where it would wait,
     * keeping its state here, and is called again once the fd is ready. */
    int nowait;
    int connecting;             /* connect_start awaits connect_finish */
    struct smtp_tls *hs;        /* a TLS handshake under way */
    char *pend;                 /* bytes taken by send, not yet written */
    size_t plen, poff, pcap;
    char peer[80];              /* "addr port", for connect messages */
    /* Memory mode (issue 27): no fd; bytes go through these buffers and
     * the Lua transport carries them over a host's socket. Kept until
     * __gc, so that the close_notify written at close can still go. */
    struct smtp_membio *mem;
    int mem_open;
    char err[256];
};

static struct lconn *check_conn(lua_State *L)
{
    return luaL_checkudata(L, 1, SMTP_CONN_MT);
}

static int conn_is_open(const struct lconn *c)
{
    return c->fd >= 0 || c->mem_open;
}

static struct lconn *check_open_conn(lua_State *L)
{
    struct lconn *c = check_conn(L);
    if (!conn_is_open(c))
        luaL_error(L, "connection is closed");
    return c;
}

/* 'notify' sends TLS close_notify first; never after a failure, when the
 * peer may be hostile or the stream out of sync. */
static void conn_close(struct lconn *c, int notify)
{
    int fd = c->fd;
    struct smtp_tls *tls = c->tls;
    c->tls = NULL;
    if (notify && c->nowait)
        notify = SMTP_TLS_NOTIFY_NOWAIT;
    smtp_tls_free(tls, conn_is_open(c) ? notify : 0);
    smtp_tls_free(c->hs, 0);
    c->hs = NULL;
    c->fd = -1;
    c->mem_open = 0;
    if (fd >= 0)
        close(fd);
    free(c->wbuf);
    c->wbuf = NULL;
    c->wcap = 0;
    free(c->pend);
    c->pend = NULL;
    c->plen = c->poff = c->pcap = 0;
}

/* Returns the failure triple and closes: the stream is out of sync. */
static int conn_fail(lua_State *L, struct lconn *c, int rc, const char *msg)
{
    conn_close(c, 0);
    return smtp_push_failure(L, rc, msg);
}

/* nil, "want", "r"|"w": the operation waits for the fd and is called
 * again; the connection stays open. */
static int push_want(lua_State *L, int rc)
{
    lua_pushnil(L);
    lua_pushliteral(L, "want");
    lua_pushstring(L, rc == SMTP_EWANTWRITE ? "w" : "r");
    return 3;
}

/* A failure closes; a want in no-wait mode does not. */
static int conn_fail_or_want(lua_State *L, struct lconn *c, int rc, const char *msg)
{
    if (smtp_is_want(rc) && c->nowait)
        return push_want(L, rc);
    return conn_fail(L, c, rc, msg);
}

static int64_t conn_deadline(const struct lconn *c)
{
    return c->nowait ? SMTP_NOWAIT : c->deadline;
}

/* Writes what the socket takes of the pending bytes (no-wait mode). */
static int conn_flush(struct lconn *c)
{
    while (c->poff < c->plen) {
        size_t sent = 0;
        const char *p = c->pend + c->poff;
        size_t left = c->plen - c->poff;
        int rc = c->tls != NULL ? smtp_tls_write_some(c->tls, p, left, &sent, c->err, sizeof c->err)
                 : c->mem != NULL ? smtp_membio_write(c->mem, p, left, &sent)
                 : smtp_net_send_some(c->fd, p, left, &sent, c->err, sizeof c->err);
        c->poff += sent;
        if (rc != SMTP_OK)
            return rc;
    }
    c->plen = c->poff = 0;
    return SMTP_OK;
}

/* No-wait mode: the iovecs are copied behind what is pending (so the
 * caller's strings may go), then written as far as the socket allows. */
static int conn_queue(struct lconn *c, const struct iovec *iov, int n)
{
    size_t need = c->plen, i;
    for (i = 0; i < (size_t)n; i++)
        need += iov[i].iov_len;
    if (need > c->pcap) {
        size_t cap = c->pcap + c->pcap / 2;
        char *nb;
        if (cap < need)
            cap = need;
        nb = realloc(c->pend, cap);
        if (nb == NULL)
            return SMTP_ENOMEM;
        c->pend = nb;
        c->pcap = cap;
    }
    for (i = 0; i < (size_t)n; i++) {
        if (iov[i].iov_len > 0)
            memcpy(c->pend + c->plen, iov[i].iov_base, iov[i].iov_len);
        c->plen += iov[i].iov_len;
    }
    return conn_flush(c);
}

static int conn_sendv(struct lconn *c, struct iovec *iov, int n)
{
    if (c->nowait)
        return conn_queue(c, iov, n);
    if (c->tls != NULL)
        return smtp_tls_sendv(c->tls, iov, n, c->deadline, c->err, sizeof c->err);
    return smtp_net_sendv(c->fd, iov, n, c->deadline, c->err, sizeof c->err);
}

static int conn_recv(struct lconn *c, char *buf, size_t cap, size_t *got)
{
    if (c->tls != NULL)
        return smtp_tls_recv(c->tls, buf, cap, got, conn_deadline(c), c->err, sizeof c->err);
    if (c->mem != NULL) {
        int rc = smtp_membio_read(c->mem, buf, cap, got);
        if (rc == SMTP_ECLOSED)
            snprintf(c->err, sizeof c->err, "connection closed by peer");
        return rc;
    }
    return smtp_net_recv(c->fd, buf, cap, got, conn_deadline(c), c->err, sizeof c->err);
}

/* A deadline this far ahead is a caller's mistake, not a wait. */
#define DEADLINE_MAX_AHEAD 1e9

/* The absolute deadline (seconds of smtp.core.now()) at idx in ms, nil
 * for none. NaN, infinities and values DEADLINE_MAX_AHEAD seconds or more
 * ahead are refused (-1, message in err): casting them to int64_t is
 * undefined and in practice meant "no deadline". A past one is 1 ms,
 * which has already passed. */
static int64_t to_deadline_ms(lua_State *L, int idx, char *err, size_t errlen)
{
    lua_Number s;
    if (lua_isnoneornil(L, idx))
        return SMTP_NO_DEADLINE;
    s = luaL_checknumber(L, idx);
    if (!isfinite(s) || s - (lua_Number)smtp_now_ms() / 1000.0 >= DEADLINE_MAX_AHEAD) {
        snprintf(err, errlen, "deadline must be a finite time less than %.0f s from now",
                 DEADLINE_MAX_AHEAD);
        return -1;
    }
    return s <= 0.001 ? 1 : (int64_t)(s * 1000.0);
}

/* A string field of the proxy table; the string stays on the stack. */
static const char *proxy_field(lua_State *L, int idx, const char *name, int required)
{
    size_t len;
    const char *s;
    lua_getfield(L, idx, name);
    s = lua_tolstring(L, -1, &len);
    if ((s == NULL && required) || (s != NULL && strlen(s) != len))
        luaL_error(L, "proxy.%s: %s", name, s == NULL ? "missing" : "contains NUL");
    return s;
}

/* Reads the optional proxy table {type=, host=, port=, user=, password=}
 * at idx (validated by lua/smtp.lua). Returns 0 when there is none. */
static int check_proxy(lua_State *L, int idx, struct smtp_proxy *p)
{
    const char *type;
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    type = proxy_field(L, idx, "type", 1);
    p->type = strcmp(type, "socks5") == 0 ? SMTP_PROXY_SOCKS5
              : strcmp(type, "http") == 0 ? SMTP_PROXY_HTTP : 0;
    p->host = proxy_field(L, idx, "host", 1);
    p->port = proxy_field(L, idx, "port", 1);
    p->user = proxy_field(L, idx, "user", 0);
    p->password = proxy_field(L, idx, "password", 0);
    return 1;
}

/* connect(host, port [, deadline [, local_address [, proxy]]])
 *   -> conn | nil, kind, msg
 * deadline is absolute, in seconds of smtp.core.now(). With a proxy the
 * TCP connection goes to the proxy, which then tunnels to host:port. */
static int lconn_connect(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    const char *port = luaL_checkstring(L, 2);
    char derr[128];
    int64_t deadline = to_deadline_ms(L, 3, derr, sizeof derr);
    const char *local = luaL_optstring(L, 4, NULL);
    struct smtp_proxy proxy;
    int use_proxy = check_proxy(L, 5, &proxy);
    struct lconn *c;
    int rc;
    if (deadline < 0)
        return smtp_push_failure(L, SMTP_EUSAGE, derr);
    c = lua_newuserdatauv(L, sizeof *c, 1);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    luaL_setmetatable(L, SMTP_CONN_MT);
    if (use_proxy)
        rc = smtp_proxy_connect(&c->fd, &proxy, host, port, local, deadline,
                                c->err, sizeof c->err);
    else
        rc = smtp_net_connect(&c->fd, host, port, local, deadline, c->err, sizeof c->err);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, c->err);
    return 1;
}

/* connect_start(addr, port [, local_address]) -> conn [, "w"] | nil, kind, msg
 * No-wait mode (SPEC 5.1): addr is a numeric address (the caller
 * resolved it, through its event loop) or a UNIX socket path. With "w"
 * the connection is under way: wait until the fd is writable, then
 * conn:connect_finish(). Every later operation of this conn returns
 * nil, "want", "r"|"w" where it would wait. */
static int lconn_connect_start(lua_State *L)
{
    const char *addr = luaL_checkstring(L, 1);
    const char *port = luaL_checkstring(L, 2);
    const char *local = luaL_optstring(L, 3, NULL);
    struct lconn *c = lua_newuserdatauv(L, sizeof *c, 1);
    int rc;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->nowait = 1;
    luaL_setmetatable(L, SMTP_CONN_MT);
    snprintf(c->peer, sizeof c->peer, "%s port %s", addr, port);
    rc = smtp_net_connect_start(&c->fd, addr, port, local, c->err, sizeof c->err);
    if (rc == SMTP_EWANTWRITE) {
        c->connecting = 1;
        lua_pushliteral(L, "w");
        return 2;
    }
    if (rc != SMTP_OK)
        return conn_fail(L, c, rc, c->err);
    return 1;
}

/* memory([peer]) -> conn: a connection in no-wait memory mode (issue
 * 27). Its bytes for the server are taken with take_output(), the
 * server's bytes given with feed(); everything else (replies, DATA,
 * TLS with all its checks) is the same code as on a socket. 'peer'
 * ("host:port") names the server for TLS session resumption. */
static int lconn_memory(lua_State *L)
{
    size_t plen;
    const char *peer = luaL_optlstring(L, 1, "", &plen);
    struct lconn *c = lua_newuserdatauv(L, sizeof *c, 1);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->nowait = 1;
    luaL_setmetatable(L, SMTP_CONN_MT);
    c->mem = calloc(1, sizeof *c->mem);
    if (c->mem == NULL)
        return luaL_error(L, "out of memory");
    luaL_argcheck(L, plen < sizeof c->mem->peer, 1, "too long");
    memcpy(c->mem->peer, peer, plen + 1);
    c->mem_open = 1;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    return 1;
}

/* feed(bytes | nil) -> true | nil, kind, msg: bytes that came from the
 * server (memory mode); nil says its stream ended. */
static int lconn_feed(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    size_t len;
    const char *data = luaL_optlstring(L, 2, NULL, &len);
    luaL_argcheck(L, c->mem != NULL, 1, "not a memory connection");
    if (data == NULL) {
        c->mem->eof = 1;
    } else if (smtp_membio_feed(c->mem, data, len) != SMTP_OK) {
        return conn_fail(L, c, SMTP_ENOMEM, NULL);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* take_output() -> bytes | nil: what the connection wrote for the server
 * since the last call (memory mode), also after close (close_notify). */
static int lconn_take_output(lua_State *L)
{
    struct lconn *c = check_conn(L);
    struct smtp_bytes *out;
    if (c->mem == NULL || c->mem->out.len == c->mem->out.off) {
        lua_pushnil(L);
        return 1;
    }
    out = &c->mem->out;
    lua_pushlstring(L, (const char *)out->data + out->off, out->len - out->off);
    out->off = out->len = 0;
    return 1;
}

/* connect_finish() -> true | nil, kind, msg: after connect_start's "w"
 * and a writable fd. */
static int lconn_connect_finish(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    int rc;
    if (!c->connecting) {
        lua_pushboolean(L, 1);
        return 1;
    }
    rc = smtp_net_connect_finish(c->fd, c->peer, c->err, sizeof c->err);
    if (rc != SMTP_OK)
        return conn_fail(L, c, rc, c->err);
    c->connecting = 0;
    lua_pushboolean(L, 1);
    return 1;
}

/* flush() -> true | nil, "want", "w"|"r" | nil, kind, msg: writes what
 * send or send_data queued in no-wait mode. */
static int lconn_flush(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    int rc = conn_flush(c);
    if (rc != SMTP_OK)
        return conn_fail_or_want(L, c, rc, c->err);
    lua_pushboolean(L, 1);
    return 1;
}

/* abort(): closes without close_notify, as after any failure (a wait
 * that ran out in the event loop: the stream is out of sync). */
static int lconn_abort(lua_State *L)
{
    conn_close(check_conn(L), 0);
    return 0;
}

/* set_deadline(abs | nil) -> true | nil, "usage", msg. A refused value
 * leaves a deadline that has already passed, so a caller that ignores
 * the failure gets a timeout at its next wait, never an endless one. */
static int lconn_set_deadline(lua_State *L)
{
    struct lconn *c = check_conn(L);
    int64_t d = to_deadline_ms(L, 2, c->err, sizeof c->err);
    if (d < 0) {
        c->deadline = 1;
        return smtp_push_failure(L, SMTP_EUSAGE, c->err);
    }
    c->deadline = d;
    lua_pushboolean(L, 1);
    return 1;
}

/* send(data | {data, ...}) -> true | nil, kind, msg; a table goes out in
 * one writev, so pipelined commands share a segment. */
static int lconn_send(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    struct iovec stackv[64], *iov = stackv;
    int n = 1, i, rc;
    if (lua_istable(L, 2)) {
        int anchor = 0, anchored = 0;
        n = (int)lua_rawlen(L, 2);
        if (n > (int)(sizeof stackv / sizeof stackv[0]))
            iov = lua_newuserdatauv(L, sizeof *iov * (size_t)n, 0);
        for (i = 0; i < n; i++) {
            size_t len;
            int t;
            lua_rawgeti(L, 2, i + 1);
            t = lua_type(L, -1);
            if (t != LUA_TSTRING && t != LUA_TNUMBER)
                return luaL_error(L, "send: element %d is a %s, not a string", i + 1,
                                  lua_typename(L, t));
            iov[i].iov_base = (void *)(size_t)lua_tolstring(L, -1, &len);
            iov[i].iov_len = len;
            if (t == LUA_TSTRING) {
                lua_pop(L, 1); /* the table keeps the string alive */
                continue;
            }
            /* A number's string exists only on the stack: it must stay
             * referenced until the send, or a GC step during a later
             * conversion frees it (review L1). */
            if (anchor == 0) {
                lua_newtable(L);
                lua_insert(L, -2);
                anchor = lua_gettop(L) - 1;
            }
            lua_rawseti(L, anchor, ++anchored);
        }
    } else {
        size_t len;
        iov[0].iov_base = (void *)(size_t)luaL_checklstring(L, 2, &len);
        iov[0].iov_len = len;
    }
    rc = conn_sendv(c, iov, n);
    if (rc != SMTP_OK)
        return conn_fail_or_want(L, c, rc, c->err);
    lua_pushboolean(L, 1);
    return 1;
}

/* receive_some([max]) -> bytes | nil, kind, msg */
static int lconn_receive_some(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    lua_Integer max = luaL_optinteger(L, 2, READ_CHUNK);
    char buf[READ_CHUNK];
    size_t got;
    int rc;
    luaL_argcheck(L, max > 0, 2, "must be positive");
    rc = conn_recv(c, buf, max < READ_CHUNK ? (size_t)max : READ_CHUNK, &got);
    if (rc != SMTP_OK)
        return conn_fail_or_want(L, c, rc, c->err);
    lua_pushlstring(L, buf, got);
    return 1;
}

/* read_reply(parser) -> reply | nil, kind, msg: the Lua client's read loop
 * (next, else receive and feed) run in C with the same parser. */
static int lconn_read_reply(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    struct smtp_reply_parser *p = lreply_check(L, 2);
    char buf[READ_CHUNK];
    for (;;) {
        struct smtp_reply r;
        size_t got;
        int rc = smtp_reply_next(p, &r);
        if (rc == SMTP_OK) {
            lreply_push(L, &r);
            return 1;
        }
        if (rc != SMTP_EAGAIN)
            return conn_fail(L, c, rc, p->error);
        rc = conn_recv(c, buf, sizeof buf, &got);
        if (rc != SMTP_OK)
            return conn_fail_or_want(L, c, rc, c->err);
        rc = smtp_reply_feed(p, buf, got);
        if (rc != SMTP_OK)
            return conn_fail(L, c, rc, rc == SMTP_EPROTO ? p->error : NULL);
    }
}

static char *wbuf_reserve(struct lconn *c, size_t need)
{
    /* Grown by half again at least, so growth stays rare. */
    if (need > c->wcap && need < c->wcap + c->wcap / 2)
        need = c->wcap + c->wcap / 2;
    if (need > c->wcap) {
        char *nb = realloc(c->wbuf, need);
        if (nb == NULL)
            return NULL;
        c->wbuf = nb;
        c->wcap = need;
    }
    return c->wbuf;
}

/* send_data(stuffer, chunk [, final [, bdat [, prefix [, trailer]]]])
 *   -> bytes_on_wire | nil, kind, msg
 *                    | nil, "usage", "message contains a NUL byte: ...", "source"
 * Encodes chunk (may be nil or "") with the stuffer directly into the
 * connection's buffer and writes it; 'final' appends the encoder's tail
 * in the same write. With 'bdat' the encoded bytes are framed as one
 * "BDAT n[ LAST]" command (RFC 3030). 'prefix' and 'trailer' are
 * pipelined command lines written before and after, in the same writev,
 * so a whole transaction can leave in one segment. Outside binary mode a
 * NUL in the body sends nothing of this call, closes the connection and
 * returns the 4-value failure above ('where' = "source", as send_body). */
static int lconn_send_data(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    struct smtp_dotstuffer *d = ldotstuff_check(L, 2);
    size_t len = 0, n, plen = 0, tlen = 0;
    const char *in = lua_isnoneornil(L, 3) ? "" : luaL_checklstring(L, 3, &len);
    int final = lua_toboolean(L, 4), bdat = lua_toboolean(L, 5), rc;
    const char *prefix = luaL_optlstring(L, 6, NULL, &plen);
    const char *trailer = luaL_optlstring(L, 7, NULL, &tlen);
    char head[64];
    struct iovec iov[4];
    int niov = 0;
    char *out;
    luaL_argcheck(L, !d->finished, 2, "encoder already finished");
    if (d->nul)
        len = 0; /* a stuffer that already refused: fail again below */
    out = wbuf_reserve(c, SMTP_DOT_MAX_OUT(len) + SMTP_DOT_FINISH_MAX);
    if (out == NULL)
        return smtp_push_failure(L, SMTP_ENOMEM, NULL);
    n = smtp_dot_encode(d, in, len, out);
    if (d->nul) {
        /* Nothing of this call goes out, and the body is never ended:
         * the connection is dropped as for a failing source (SPEC 7). */
        char msg[192];
        smtp_dot_nul_message(d, msg, sizeof msg);
        conn_fail(L, c, SMTP_EUSAGE, msg);
        lua_pushstring(L, "source");
        return 4;
    }
    if (final)
        n += smtp_dot_finish(d, out + n);
    if (plen > 0) {
        iov[niov].iov_base = (void *)(size_t)prefix;
        iov[niov++].iov_len = plen;
    }
    if (bdat) {
        int hl = snprintf(head, sizeof head, "BDAT %lu%s\r\n", (unsigned long)n,
                          final ? " LAST" : "");
        iov[niov].iov_base = head;
        iov[niov++].iov_len = (size_t)hl;
    }
    iov[niov].iov_base = out;
    iov[niov++].iov_len = n;
    if (tlen > 0) {
        iov[niov].iov_base = (void *)(size_t)trailer;
        iov[niov++].iov_len = tlen;
    }
    rc = conn_sendv(c, iov, niov);
    if (rc != SMTP_OK && !(smtp_is_want(rc) && c->nowait))
        return conn_fail(L, c, rc, c->err);
    lua_pushinteger(L, (lua_Integer)n);
    if (rc != SMTP_OK) {
        /* queued, not all written: the caller waits, then flush() */
        lua_pushstring(L, rc == SMTP_EWANTWRITE ? "w" : "r");
        return 2;
    }
    return 1;
}

struct lconn *lconn_check_open(lua_State *L, int idx)
{
    struct lconn *c = luaL_checkudata(L, idx, SMTP_CONN_MT);
    if (!conn_is_open(c))
        luaL_error(L, "connection is closed");
    return c;
}

int lconn_write(void *conn, struct iovec *iov, int n)
{
    struct lconn *c = conn;
    /* send_body writes many times in one call: it needs a wait between
     * them, which only blocking mode has (the loop transport hides it). */
    if (c->nowait) {
        snprintf(c->err, sizeof c->err, "send_body needs blocking mode");
        return SMTP_EUSAGE;
    }
    return conn_sendv(conn, iov, n);
}

void lconn_deadline_in(struct lconn *c, int64_t ms)
{
    c->deadline = smtp_now_ms() + (ms > 0 ? ms : 1);
}

char *lconn_buffer(struct lconn *c, size_t need)
{
    return wbuf_reserve(c, need);
}

int lconn_fail(lua_State *L, struct lconn *c, int rc, const char *msg)
{
    return conn_fail(L, c, rc, msg != NULL ? msg : c->err);
}

static int lconn_close(lua_State *L)
{
    conn_close(check_conn(L), 1);
    return 0;
}

static int lconn_gc(lua_State *L)
{
    struct lconn *c = check_conn(L);
    conn_close(c, 1);
    if (c->mem != NULL) {
        smtp_membio_free(c->mem);
        free(c->mem);
        c->mem = NULL;
    }
    return 0;
}

/* starttls(config [, peer_name]) -> true | nil, kind, msg. The handshake
 * runs under the connection's deadline; any failure closes. Also used
 * right after connect for implicit TLS (RFC 8314). */
static int lconn_starttls(lua_State *L)
{
    struct lconn *c = check_open_conn(L);
    int rc;
    if (c->tls != NULL)
        return luaL_error(L, "TLS is already active on this connection");
    if (c->hs != NULL) {
        /* no-wait mode: the handshake goes on where it stopped */
        rc = smtp_tls_handshake(c->hs, SMTP_NOWAIT, c->err, sizeof c->err);
    } else {
        rc = ltls_start(L, 1, 2, 3, c->fd, c->mem, conn_deadline(c), &c->hs, c->err, sizeof c->err);
    }
    if (rc == SMTP_OK) {
        c->tls = c->hs;
        c->hs = NULL;
        lua_pushboolean(L, 1);
        return 1;
    }
    return conn_fail_or_want(L, c, rc, c->err);
}

/* tls_channel_binding() -> type, bytes | nil, kind, message: what
 * SCRAM-*-PLUS binds the exchange to (see smtp_tls_channel_binding). */
static int lconn_tls_channel_binding(lua_State *L)
{
    struct lconn *c = check_conn(L);
    unsigned char data[64];
    const char *type;
    size_t len;
    int rc;
    if (c->tls == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "usage");
        lua_pushliteral(L, "channel binding needs an active TLS session");
        return 3;
    }
    rc = smtp_tls_channel_binding(c->tls, &type, data, sizeof data, &len, c->err, sizeof c->err);
    if (rc != SMTP_OK) {
        lua_pushnil(L);
        lua_pushstring(L, smtp_err_kind(rc));
        lua_pushstring(L, c->err);
        return 3;
    }
    lua_pushstring(L, type);
    lua_pushlstring(L, (const char *)data, len);
    return 2;
}

/* tls_info() -> {version=, cipher=, peer_subject=, peer_verified=, resumed=} | nil */
static int lconn_tls_info(lua_State *L)
{
    struct lconn *c = check_conn(L);
    if (c->tls == NULL)
        lua_pushnil(L);
    else
        ltls_push_info(L, c->tls);
    return 1;
}

static int lconn_is_closed(lua_State *L)
{
    lua_pushboolean(L, !conn_is_open(check_conn(L)));
    return 1;
}

/* local_literal() -> "[192.0.2.1]" / "[IPv6:...]" | nil: the default
 * EHLO name when the machine has no FQDN (RFC 5321 4.1.4). */
static int lconn_local_literal(lua_State *L)
{
    struct lconn *c = check_conn(L);
    char buf[INET6_ADDRSTRLEN + 16];
    if (c->fd < 0 || smtp_net_local_literal(c->fd, buf, sizeof buf) != SMTP_OK) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, buf);
    return 1;
}

/* input_pending() -> false | "data" | "eof" | nil: what arrived that
 * nobody asked for, without waiting. An idle SMTP session has nothing:
 * a server that dropped it has sent its FIN (and maybe a 421) by now, so
 * smtp.pool can skip the RSET round trip (issue 23). nil for a memory
 * connection: only the host's socket could tell. */
static int lconn_input_pending(lua_State *L)
{
    struct lconn *c = check_conn(L);
    char b;
    ssize_t n;
    if (!conn_is_open(c)) {
        lua_pushliteral(L, "eof");
        return 1;
    }
    if (c->mem != NULL) {
        lua_pushnil(L);
        return 1;
    }
    if (c->tls != NULL && smtp_tls_unread(c->tls) > 0) {
        lua_pushliteral(L, "data");
        return 1;
    }
    do {
        n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        lua_pushliteral(L, "data");
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        lua_pushboolean(L, 0);
    else
        lua_pushliteral(L, "eof");  /* end of stream, or a reset */
    return 1;
}

static int lconn_fileno(lua_State *L)
{
    lua_pushinteger(L, check_conn(L)->fd);
    return 1;
}

static int lconn_tostring(lua_State *L)
{
    struct lconn *c = check_conn(L);
    if (!conn_is_open(c))
        lua_pushfstring(L, "%s (closed)", SMTP_CONN_MT);
    else if (c->mem != NULL)
        lua_pushfstring(L, "%s (memory, %s)", SMTP_CONN_MT, c->mem->peer);
    else
        lua_pushfstring(L, "%s (fd %d)", SMTP_CONN_MT, c->fd);
    return 1;
}

static const luaL_Reg lconn_methods[] = {
    {"set_deadline", lconn_set_deadline},
    {"send", lconn_send},
    {"receive_some", lconn_receive_some},
    {"read_reply", lconn_read_reply},
    {"send_data", lconn_send_data},
    {"send_body", lbody_send_body},
    {"starttls", lconn_starttls},
    {"tls_info", lconn_tls_info},
    {"tls_channel_binding", lconn_tls_channel_binding},
    {"close", lconn_close},
    {"abort", lconn_abort},
    {"connect_finish", lconn_connect_finish},
    {"flush", lconn_flush},
    {"is_closed", lconn_is_closed},
    {"fileno", lconn_fileno},
    {"input_pending", lconn_input_pending},
    {"local_literal", lconn_local_literal},
    {"feed", lconn_feed},
    {"take_output", lconn_take_output},
    {"__gc", lconn_gc},
    {"__close", lconn_close},
    {"__tostring", lconn_tostring},
    {NULL, NULL}
};

void lconn_open(lua_State *L)
{
    smtp_new_class(L, SMTP_CONN_MT, lconn_methods);
    lua_pushcfunction(L, lconn_connect);
    lua_setfield(L, -2, "connect");
    lua_pushcfunction(L, lconn_connect_start);
    lua_setfield(L, -2, "connect_start");
    lua_pushcfunction(L, lconn_memory);
    lua_setfield(L, -2, "memory_conn");
}
