/* File-system and process helpers for lua/smtp/outbox.lua. Every failure
 * is returned as nil, kind ("io" or "usage"), message; every descriptor
 * is closed on every path (directory streams live in a userdata whose
 * __gc closes them, so even a memory error while listing cannot leak). */
#include "lfsutil.h"
#include "lsmtp.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* renameat2's flag (linux/fs.h); glibc defines it only with _GNU_SOURCE. */
#define SMTP_RENAME_NOREPLACE (1 << 0)

#define SMTP_FS_LOCK_MT "smtp.core.FsLock"
#define SMTP_FS_DIR_MT "smtp.core.FsDir"

struct fs_lock {
    int fd; /* -1 once released */
};

struct fs_dir {
    DIR *dir; /* NULL once closed */
};

static int fail_io(lua_State *L, const char *what, const char *path, int err)
{
    lua_pushnil(L);
    lua_pushstring(L, smtp_err_kind(SMTP_EIO));
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
    return 3;
}

/* A path argument; a NUL inside would silently name another file. */
static const char *check_path(lua_State *L, int idx)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (len == 0 || strlen(s) != len)
        return NULL;
    return s;
}

#define PATH_ARG(var, idx)                                                    \
    const char *var = check_path(L, (idx));                                   \
    if (var == NULL)                                                          \
        return smtp_push_failure(L, SMTP_EUSAGE, "path must be a non-empty string without NUL")

static int close_retry(int fd)
{
    /* Linux releases the descriptor even when close reports EINTR: never
     * retry it. */
    return close(fd);
}

/* fs_list(dir) -> { name, ... } without "." and "..", in readdir order. */
static int ldir_gc(lua_State *L)
{
    struct fs_dir *d = (struct fs_dir *)luaL_checkudata(L, 1, SMTP_FS_DIR_MT);
    if (d->dir != NULL) {
        closedir(d->dir);
        d->dir = NULL;
    }
    return 0;
}

static int lfs_list(lua_State *L)
{
    struct fs_dir *d;
    struct dirent *ent;
    lua_Integer n = 0;
    PATH_ARG(path, 1);
    d = (struct fs_dir *)lua_newuserdatauv(L, sizeof *d, 0);
    d->dir = NULL;
    luaL_setmetatable(L, SMTP_FS_DIR_MT);
    d->dir = opendir(path);
    if (d->dir == NULL)
        return fail_io(L, "cannot list", path, errno);
    lua_newtable(L);
    for (;;) {
        errno = 0;
        ent = readdir(d->dir);
        if (ent == NULL) {
            int err = errno;
            closedir(d->dir);
            d->dir = NULL;
            if (err != 0)
                return fail_io(L, "cannot list", path, err);
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        lua_pushstring(L, ent->d_name);
        lua_rawseti(L, -2, (int)++n);
    }
    return 1;
}

/* fs_lock(path [, any_owner]) -> lock, size
 *   | nil, "busy", msg | nil, "gone", msg | nil, "bad", msg | nil, kind, msg.
 * An exclusive, non-blocking flock on a spool file. Only a regular file of
 * ours with one link is taken ("bad" otherwise: a FIFO, a device, a
 * directory, a symlink, another user's file unless any_owner, one we may
 * not open): it is looked at with lstat before it is opened (opening a
 * device can have effects), opened O_NOFOLLOW | O_NONBLOCK read-only, and
 * checked again with fstat. A second link is a publish under way
 * ("busy"). After locking, the path must still name the very file
 * locked: a file renamed over it or moved away meanwhile is "gone", so
 * two workers can never each hold a lock on what the path names. size is
 * the file's size when locked; lock:read() reads that much. */
static int llock_release(lua_State *L)
{
    struct fs_lock *lk = (struct fs_lock *)luaL_checkudata(L, 1, SMTP_FS_LOCK_MT);
    if (lk->fd >= 0) {
        /* Closing the only descriptor of the open file drops the flock. */
        close_retry(lk->fd);
        lk->fd = -1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int llock_held(lua_State *L)
{
    struct fs_lock *lk = (struct fs_lock *)luaL_checkudata(L, 1, SMTP_FS_LOCK_MT);
    lua_pushboolean(L, lk->fd >= 0);
    return 1;
}

/* lock:read(max) -> bytes | nil, kind, msg: the whole file through the
 * locked descriptor (never the path again), at most max bytes: a file
 * longer than that is refused, not read. */
static int llock_read(lua_State *L)
{
    struct fs_lock *lk = (struct fs_lock *)luaL_checkudata(L, 1, SMTP_FS_LOCK_MT);
    lua_Integer max = luaL_checkinteger(L, 2);
    luaL_Buffer b;
    off_t off = 0;
    if (lk->fd < 0)
        return smtp_push_failure(L, SMTP_EUSAGE, "lock already released");
    luaL_argcheck(L, max >= 0, 2, "must not be negative");
    luaL_buffinit(L, &b);
    for (;;) {
        char chunk[65536];
        ssize_t n = pread(lk->fd, chunk, sizeof chunk, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail_io(L, "cannot read", "spool file", errno);
        }
        if (n == 0)
            break;
        if ((lua_Integer)off + n > max) {
            lua_pushnil(L);
            lua_pushliteral(L, "bad");
            lua_pushfstring(L, "spool file is larger than %d bytes", (int)(max > 0x7fffffff ? 0x7fffffff : max));
            return 3;
        }
        luaL_addlstring(&b, chunk, (size_t)n);
        off += n;
    }
    luaL_pushresult(&b);
    return 1;
}

static int bad_entry(lua_State *L, struct fs_lock *lk, const char *path, const char *why)
{
    if (lk->fd >= 0) {
        close_retry(lk->fd);
        lk->fd = -1;
    }
    lua_pushnil(L);
    lua_pushliteral(L, "bad");
    lua_pushfstring(L, "%s: %s", path, why);
    return 3;
}

static const char *not_ours(const struct stat *st, int any_owner)
{
    if (!S_ISREG(st->st_mode))
        return S_ISDIR(st->st_mode) ? "a directory, not a spool file"
             : S_ISLNK(st->st_mode) ? "a symbolic link, not a spool file"
             : "not a regular file";
    if (!any_owner && st->st_uid != geteuid())
        return "owned by another user";
    return NULL;
}

static int lfs_lock(lua_State *L)
{
    struct fs_lock *lk;
    struct stat held, named;
    const char *why;
    int fd, rc, any_owner;
    PATH_ARG(path, 1);
    any_owner = lua_toboolean(L, 2);
    lk = (struct fs_lock *)lua_newuserdatauv(L, sizeof *lk, 0);
    lk->fd = -1;
    luaL_setmetatable(L, SMTP_FS_LOCK_MT);
    if (lstat(path, &named) != 0) {
        if (errno == ENOENT) {
            lua_pushnil(L);
            lua_pushliteral(L, "gone");
            lua_pushfstring(L, "%s no longer exists", path);
            return 3;
        }
        return fail_io(L, "cannot look at", path, errno);
    }
    why = not_ours(&named, any_owner);
    if (why != NULL)
        return bad_entry(L, lk, path, why);
    do
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) {
            lua_pushnil(L);
            lua_pushliteral(L, "gone");
            lua_pushfstring(L, "%s no longer exists", path);
            return 3;
        }
        if (err == ELOOP || err == EACCES || err == EPERM || err == ENXIO)
            return bad_entry(L, lk, path, strerror(err));
        return fail_io(L, "cannot open", path, err);
    }
    lk->fd = fd;
    if (fstat(fd, &held) != 0)
        return bad_entry(L, lk, path, strerror(errno));
    why = not_ours(&held, any_owner);
    if (why != NULL)
        return bad_entry(L, lk, path, why);
    if (held.st_nlink != 1) {
        close_retry(fd);
        lk->fd = -1;
        lua_pushnil(L);
        lua_pushliteral(L, "busy");
        lua_pushfstring(L, "%s has %d links (a publish under way?)", path, (int)held.st_nlink);
        return 3;
    }
    do
        rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int err = errno;
        close_retry(fd);
        lk->fd = -1;
        if (err == EWOULDBLOCK) {
            lua_pushnil(L);
            lua_pushliteral(L, "busy");
            lua_pushfstring(L, "%s is locked by another process", path);
            return 3;
        }
        return fail_io(L, "cannot lock", path, err);
    }
    if (stat(path, &named) != 0 ||
        held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
        close_retry(fd);
        lk->fd = -1;
        lua_pushnil(L);
        lua_pushliteral(L, "gone");
        lua_pushfstring(L, "%s was moved or replaced while locking", path);
        return 3;
    }
    lua_pushinteger(L, (lua_Integer)held.st_size);
    return 2;
}

/* fs_read_file(path, max [, any_owner]) -> bytes | nil, "gone", msg
 *   | nil, "bad", msg | nil, kind, msg: a spool file read safely without
 * a lock: a regular file of ours only (checked as fs_lock checks), opened
 * O_NOFOLLOW | O_NONBLOCK, at most max bytes. */
static int lfs_read_file(lua_State *L)
{
    struct fs_lock *lk;
    struct stat st;
    const char *why;
    int fd, n;
    PATH_ARG(path, 1);
    luaL_checkinteger(L, 2);
    lk = (struct fs_lock *)lua_newuserdatauv(L, sizeof *lk, 0);
    lk->fd = -1;
    luaL_setmetatable(L, SMTP_FS_LOCK_MT);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            lua_pushnil(L);
            lua_pushliteral(L, "gone");
            lua_pushfstring(L, "%s does not exist", path);
            return 3;
        }
        return fail_io(L, "cannot look at", path, errno);
    }
    why = not_ours(&st, lua_toboolean(L, 3));
    if (why != NULL)
        return bad_entry(L, lk, path, why);
    do
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return bad_entry(L, lk, path, strerror(errno));
    lk->fd = fd;
    if (fstat(fd, &st) != 0)
        return bad_entry(L, lk, path, strerror(errno));
    why = not_ours(&st, lua_toboolean(L, 3));
    if (why != NULL)
        return bad_entry(L, lk, path, why);
    /* The userdata (its __gc closes fd) stays below the result. */
    lua_pushcfunction(L, llock_read);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 3);
    n = lua_isnil(L, -3) ? 3 : 1;
    if (n == 1)
        lua_pop(L, 2);
    close_retry(lk->fd);
    lk->fd = -1;
    return n;
}

/* fs_lstat(path) -> {type=, uid=, mode=, nlink=, size=, mine=, mtime=} | nil, kind,
 * msg, without following a symlink (type "link"); mode is the permission
 * bits, mine whether the caller's effective uid owns it. */
static int lfs_lstat(lua_State *L)
{
    struct stat st;
    PATH_ARG(path, 1);
    if (lstat(path, &st) != 0)
        return fail_io(L, "cannot look at", path, errno);
    lua_createtable(L, 0, 7);
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory"
                      : S_ISLNK(st.st_mode) ? "link" : "other");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st.st_nlink);
    lua_setfield(L, -2, "nlink");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushboolean(L, st.st_uid == geteuid());
    lua_setfield(L, -2, "mine");
    lua_pushnumber(L, (lua_Number)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

/* fs_publish(from, to) -> true | nil, "exists", msg | nil, kind, msg:
 * renames without ever replacing an existing `to` (renameat2 with
 * RENAME_NOREPLACE; link + unlink where the file system lacks it). */
static int lfs_publish(lua_State *L)
{
    const char *to;
    int rc, err;
    PATH_ARG(from, 1);
    to = check_path(L, 2);
    if (to == NULL)
        return smtp_push_failure(L, SMTP_EUSAGE, "path must be a non-empty string without NUL");
#if defined(__linux__) && defined(SYS_renameat2)
    rc = (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, SMTP_RENAME_NOREPLACE);
    err = rc != 0 ? errno : 0;
    if (rc != 0 && (err == EINVAL || err == ENOSYS))
#endif
    {
        rc = link(from, to);
        err = rc != 0 ? errno : 0;
        if (rc == 0 && unlink(from) != 0) {
            err = errno;
            (void)unlink(to);
            rc = -1;
        }
    }
    if (rc != 0) {
        lua_pushnil(L);
        if (err == EEXIST) {
            lua_pushliteral(L, "exists");
            lua_pushfstring(L, "%s already exists", to);
            return 3;
        }
        lua_pushstring(L, smtp_err_kind(SMTP_EIO));
        lua_pushfstring(L, "cannot publish %s as %s: %s", from, to, strerror(err));
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* fs_write_file(path, data) -> true: a new file (never an existing one),
 * mode 0600, all bytes written and fsynced before it is closed. A file
 * that could not be written whole is removed. */
static int lfs_write_file(lua_State *L)
{
    size_t len, off = 0;
    const char *data;
    int fd, err;
    PATH_ARG(path, 1);
    data = luaL_checklstring(L, 2, &len);
    do
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail_io(L, "cannot create", path, errno);
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto failed;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto failed;
    if (close_retry(fd) != 0) {
        err = errno;
        unlink(path);
        return fail_io(L, "cannot write", path, err);
    }
    lua_pushboolean(L, 1);
    return 1;
failed:
    err = errno;
    close_retry(fd);
    unlink(path);
    return fail_io(L, "cannot write", path, err);
}

/* fs_sync_dir(dir) -> true: makes renames and new names in dir durable. */
static int lfs_sync_dir(lua_State *L)
{
    int fd, rc, err;
    PATH_ARG(path, 1);
    do
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail_io(L, "cannot open directory", path, errno);
    rc = fsync(fd);
    err = errno;
    close_retry(fd);
    /* Some file systems cannot sync a directory (EINVAL): nothing to do. */
    if (rc != 0 && err != EINVAL)
        return fail_io(L, "cannot sync directory", path, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int lfs_rename(lua_State *L)
{
    PATH_ARG(from, 1);
    {
        PATH_ARG(to, 2);
        if (rename(from, to) != 0) {
            int err = errno;
            lua_pushnil(L);
            lua_pushstring(L, smtp_err_kind(SMTP_EIO));
            lua_pushfstring(L, "cannot rename %s to %s: %s", from, to, strerror(err));
            return 3;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* fs_mkdir(path) -> true, also when the directory already exists. */
static int lfs_mkdir(lua_State *L)
{
    struct stat st;
    PATH_ARG(path, 1);
    if (mkdir(path, 0700) != 0) {
        int err = errno;
        if (err != EEXIST)
            return fail_io(L, "cannot create directory", path, err);
        if (stat(path, &st) != 0)
            return fail_io(L, "cannot create directory", path, errno);
        if (!S_ISDIR(st.st_mode))
            return fail_io(L, "cannot create directory", path, ENOTDIR);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int lgetpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* sleep(seconds) -> true. Bounded: NaN, negative and huge values are
 * refused rather than turned into a wait without end. */
static int lsleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec req, rem;
    if (s != s || s < 0 || s >= 1e6)
        return smtp_push_failure(L, SMTP_EUSAGE, "sleep: seconds must be a number from 0 to below 1e6");
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (lua_Number)req.tv_sec) * 1e9);
    if (req.tv_nsec > 999999999L)
        req.tv_nsec = 999999999L;
    while (nanosleep(&req, &rem) != 0) {
        if (errno != EINTR)
            return fail_io(L, "sleep", "failed", errno);
        req = rem;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* Wall-clock seconds (CLOCK_REALTIME, with fractions): the outbox keeps
 * retry times in its files, which outlive processes and reboots, where
 * the monotonic now() means nothing. */
static int lwall_time(lua_State *L)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return fail_io(L, "clock_gettime", "CLOCK_REALTIME", errno);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static const luaL_Reg lock_methods[] = {
    {"unlock", llock_release},
    {"held", llock_held},
    {"read", llock_read},
    {"__gc", llock_release},
    {"__close", llock_release},
    {NULL, NULL}
};

static const luaL_Reg dir_methods[] = {
    {"__gc", ldir_gc},
    {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"fs_list", lfs_list},
    {"fs_lock", lfs_lock},
    {"fs_lstat", lfs_lstat},
    {"fs_read_file", lfs_read_file},
    {"fs_publish", lfs_publish},
    {"fs_write_file", lfs_write_file},
    {"fs_sync_dir", lfs_sync_dir},
    {"fs_rename", lfs_rename},
    {"fs_mkdir", lfs_mkdir},
    {"getpid", lgetpid},
    {"sleep", lsleep},
    {"wall_time", lwall_time},
    {NULL, NULL}
};

void lfsutil_open(lua_State *L)
{
    smtp_new_class(L, SMTP_FS_LOCK_MT, lock_methods);
    smtp_new_class(L, SMTP_FS_DIR_MT, dir_methods);
    luaL_setfuncs(L, functions, 0);
}
