/* spawn(argv, timeout) for lua/smtp/sender/sendmail.lua: runs a program
 * without a shell (addresses are hostile input and never meet one),
 * feeds its standard input and waits for its status, all within one
 * deadline; a child still running at the deadline is killed. Its stdin is
 * a socket so that writes after it quits give EPIPE, not SIGPIPE
 * (MSG_NOSIGNAL). Its stdout and stderr go to a pipe of which the first
 * bytes are kept for the error message. */
#include "lspawn.h"
#include "lsmtp.h"
#include "err.h"
#include "deadline.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define SMTP_PROC_MT "smtp.core.Proc"
#define MAX_ARGS 4096
#define ERR_KEEP 1024

struct proc {
    pid_t pid;       /* -1 once reaped */
    int in;          /* our end of its stdin, -1 once closed */
    int out;         /* read end of its stdout+stderr, -1 once closed */
    int status;      /* waitpid status once reaped */
    int lost;        /* reaped by someone else (SIGCHLD ignored): status unknown */
    int64_t deadline; /* monotonic ms */
    size_t kept;
    char err[ERR_KEEP];
};

extern char **environ;

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd); /* Linux frees it even on EINTR: no retry */
        *fd = -1;
    }
}

/* Reads what the child wrote so far without blocking; keeps the first
 * ERR_KEEP bytes, drops the rest (so a chatty child never blocks). */
static void drain(struct proc *p)
{
    char buf[512];
    int i;
    for (i = 0; p->out >= 0 && i < 256; i++) {
        ssize_t n = read(p->out, buf, sizeof buf);
        if (n > 0) {
            size_t room = ERR_KEEP - p->kept, take = (size_t)n < room ? (size_t)n : room;
            memcpy(p->err + p->kept, buf, take);
            p->kept += take;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0)
                close_fd(&p->out);
            return;
        }
    }
}

static int reap(struct proc *p, int options)
{
    pid_t r;
    if (p->pid < 0)
        return 1;
    do
        r = waitpid(p->pid, &p->status, options);
    while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->lost = r != p->pid;
        p->pid = -1;
        return 1;
    }
    return 0;
}

static void kill_and_reap(struct proc *p)
{
    close_fd(&p->in);
    if (p->pid > 0) {
        /* Its process group: a sendmail's own helpers (postdrop) too. */
        if (kill(-p->pid, SIGKILL) != 0)
            kill(p->pid, SIGKILL);
        reap(p, 0);
    }
    close_fd(&p->out);
}

static struct proc *check_proc(lua_State *L)
{
    return (struct proc *)luaL_checkudata(L, 1, SMTP_PROC_MT);
}

/* spawn({path, arg1, ...}, timeout) -> proc | nil, kind, msg */
static int lspawn(lua_State *L)
{
    int n, i, sv[2], pv[2];
    char **argv;
    lua_Number timeout;
    struct proc *p;
    pid_t pid;
    luaL_checktype(L, 1, LUA_TTABLE);
    timeout = luaL_checknumber(L, 2);
    if (timeout != timeout || timeout <= 0 || timeout >= 1e6)
        return smtp_push_failure(L, SMTP_EUSAGE, "spawn: timeout must be a number of seconds from 0 to below 1e6");
    n = (int)lua_rawlen(L, 1);
    if (n < 1 || n > MAX_ARGS)
        return smtp_push_failure(L, SMTP_EUSAGE, "spawn: argv must hold the program and at most 4095 arguments");
    argv = (char **)lua_newuserdata(L, sizeof(char *) * (size_t)(n + 1));
    for (i = 0; i < n; i++) {
        size_t len;
        const char *s;
        lua_rawgeti(L, 1, i + 1);
        /* Strings only: a number converted here would be a new string
         * that nothing keeps alive once popped. */
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (s == NULL || strlen(s) != len)
            return smtp_push_failure(L, SMTP_EUSAGE, "spawn: every argument must be a string without NUL");
        /* kept alive by the table at index 1; execve wants char *. */
        memcpy(&argv[i], &s, sizeof s);
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    if (argv[0][0] != '/')
        return smtp_push_failure(L, SMTP_EUSAGE, "spawn: the program must be an absolute path");
    if (access(argv[0], X_OK) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, smtp_err_kind(SMTP_EIO));
        lua_pushfstring(L, "cannot execute %s: %s", argv[0], strerror(errno));
        return 3;
    }
    p = (struct proc *)lua_newuserdata(L, sizeof *p);
    p->pid = -1;
    p->in = p->out = -1;
    p->status = 0;
    p->lost = 0;
    p->kept = 0;
    p->deadline = smtp_now_ms() + (int64_t)(timeout * 1000.0);
    luaL_setmetatable(L, SMTP_PROC_MT);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        goto failed;
    if (pipe(pv) != 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        errno = err;
        goto failed;
    }
    /* Not inherited by programs other threads may start meanwhile. */
    fcntl(pv[0], F_SETFD, FD_CLOEXEC);
    fcntl(pv[1], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls here (the parent may have threads). */
        struct sigaction dfl;
        sigset_t none;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        if (dup2(sv[1], 0) < 0 || dup2(pv[1], 1) < 0 || dup2(pv[1], 2) < 0)
            _exit(127);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    close(sv[1]);
    close(pv[1]);
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(pv[0]);
        errno = err;
        goto failed;
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    p->pid = pid;
    p->in = sv[0];
    p->out = pv[0];
    fcntl(p->in, F_SETFL, fcntl(p->in, F_GETFL) | O_NONBLOCK);
    fcntl(p->out, F_SETFL, fcntl(p->out, F_GETFL) | O_NONBLOCK);
    return 1;
failed:
    lua_pushnil(L);
    lua_pushstring(L, smtp_err_kind(SMTP_EIO));
    lua_pushfstring(L, "cannot start %s: %s", argv[0], strerror(errno));
    return 3;
}

/* proc:write(data) -> true | nil, "io"|"timeout", msg */
static int lproc_write(lua_State *L)
{
    struct proc *p = check_proc(L);
    size_t len, off = 0;
    const char *data = luaL_checklstring(L, 2, &len);
    if (p->in < 0)
        return smtp_push_failure(L, SMTP_EUSAGE, "the program's input is closed");
    while (off < len) {
        struct pollfd fds[2];
        int64_t left = p->deadline - smtp_now_ms();
        ssize_t w;
        if (left <= 0)
            return smtp_push_failure(L, SMTP_ETIMEOUT, "the program did not read its input in time");
        fds[0].fd = p->in;
        fds[0].events = POLLOUT;
        fds[1].fd = p->out;
        fds[1].events = POLLIN;
        fds[0].revents = fds[1].revents = 0;
        if (poll(fds, p->out >= 0 ? 2 : 1, left > 1000 ? 1000 : (int)left) < 0 && errno != EINTR)
            return smtp_push_failure(L, SMTP_EIO, strerror(errno));
        if (fds[1].revents)
            drain(p);
        if (!fds[0].revents)
            continue;
        w = send(p->in, data + off, len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            lua_pushnil(L);
            lua_pushstring(L, smtp_err_kind(SMTP_EIO));
            lua_pushfstring(L, "the program stopped reading its input: %s", strerror(errno));
            return 3;
        }
        off += (size_t)w;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* proc:finish() -> {exit=n | signal=n | timeout=true | lost=true, output=s}:
 * closes its input, then waits (until the deadline, then kills it). */
static int lproc_finish(lua_State *L)
{
    struct proc *p = check_proc(L);
    int timed_out = 0;
    close_fd(&p->in);
    while (p->pid > 0 && !reap(p, WNOHANG)) {
        struct pollfd fd;
        int64_t left = p->deadline - smtp_now_ms();
        if (left <= 0) {
            timed_out = 1;
            kill_and_reap(p);
            break;
        }
        fd.fd = p->out;
        fd.events = POLLIN;
        fd.revents = 0;
        if (p->out >= 0) {
            /* Woken by output or its end (the child exiting closes it). */
            if (poll(&fd, 1, left > 20 ? 20 : (int)left) > 0)
                drain(p);
        } else {
            struct timespec ts = { 0, 5000000L };
            nanosleep(&ts, NULL);
        }
    }
    drain(p);
    close_fd(&p->out);
    lua_createtable(L, 0, 3);
    if (timed_out) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "timeout");
    } else if (p->lost) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "lost");
    } else if (WIFEXITED(p->status)) {
        lua_pushinteger(L, WEXITSTATUS(p->status));
        lua_setfield(L, -2, "exit");
    } else if (WIFSIGNALED(p->status)) {
        lua_pushinteger(L, WTERMSIG(p->status));
        lua_setfield(L, -2, "signal");
    }
    lua_pushlstring(L, p->err, p->kept);
    lua_setfield(L, -2, "output");
    return 1;
}

/* proc:kill(): SIGKILL and reap (a send given up half way). */
static int lproc_kill(lua_State *L)
{
    kill_and_reap(check_proc(L));
    return 0;
}

static const luaL_Reg proc_methods[] = {
    {"write", lproc_write},
    {"finish", lproc_finish},
    {"kill", lproc_kill},
    {"__gc", lproc_kill},
    {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"spawn", lspawn},
    {NULL, NULL}
};

void lspawn_open(lua_State *L)
{
    smtp_new_class(L, SMTP_PROC_MT, proc_methods);
    luaL_setfuncs(L, functions, 0);
}
