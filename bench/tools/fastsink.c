/* A discarding SMTP server for the large-message benchmarks (bench/run.lua,
 * S3): Postfix's smtp-sink reads DATA line by line and tops out far below
 * loopback TCP, so it would measure itself rather than the client. This
 * one reads 1 MiB at a time and looks for the terminator with memmem.
 * Speaks just enough RFC 5321 (EHLO with PIPELINING, CHUNKING, 8BITMIME,
 * BINARYMIME, SIZE; MAIL, RCPT, RSET, NOOP -> 250; DATA; BDAT n [LAST];
 * QUIT); replies to pipelined commands go out in one write. Connections
 * are served one after the other in this one process (so /proc shows
 * all its CPU time). Not hardened: loopback benchmarking only.
 *   fastsink <port>   (listens on 127.0.0.1; exits on SIGTERM) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ (1 << 20)
#define KEEP 4

static char out[65536];
static size_t outlen;

static void reply(const char *s)
{
    size_t n = strlen(s);
    if (outlen + n <= sizeof out) {
        memcpy(out + outlen, s, n);
        outlen += n;
    }
}

static int flush(int fd)
{
    size_t off = 0;
    while (off < outlen) {
        ssize_t n = write(fd, out + off, outlen - off);
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    outlen = 0;
    return 0;
}

static void serve(int fd)
{
    static char buf[KEEP + BUFSZ];
    char *data = buf + KEEP;
    size_t have = 0;            /* unprocessed bytes at data[0..have) */
    enum { CMD, DATA, BDAT } mode = CMD;
    unsigned long long bdat_left = 0;
    int bdat_last = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    reply("220 fastsink ESMTP\r\n");
    if (flush(fd) < 0) return;
    for (;;) {
        size_t pos = 0;
        ssize_t n = read(fd, data + have, BUFSZ - have);
        if (n <= 0) return;
        have += (size_t)n;
        for (;;) {
            if (mode == DATA) {
                /* The KEEP bytes before data + pos are the end of what came
                 * before (the DATA line's CRLF at first, so ".\r\n" right
                 * away ends an empty message): a terminator split between
                 * two reads is still found. */
                char *end = memmem(data + pos - KEEP, have - pos + KEEP, "\r\n.\r\n", 5);
                if (!end) {
                    memmove(data - KEEP, data + have - KEEP, KEEP);
                    pos = have = 0;
                    break;
                }
                pos = (size_t)(end + 5 - data);
                mode = CMD;
                reply("250 2.0.0 Ok: queued as FAST\r\n");
                continue;
            }
            if (mode == BDAT) {
                size_t take = have - pos;
                if (take > bdat_left) take = (size_t)bdat_left;
                bdat_left -= take;
                pos += take;
                if (bdat_left > 0) { pos = have = 0; break; }
                mode = CMD;
                reply(bdat_last ? "250 2.0.0 Ok: queued as FAST\r\n" : "250 2.0.0 Ok\r\n");
                continue;
            }
            char *nl = memchr(data + pos, '\n', have - pos);
            if (!nl) {
                memmove(data, data + pos, have - pos);
                have -= pos;
                pos = 0;
                if (have == BUFSZ) return; /* line too long */
                break;
            }
            char *line = data + pos;
            size_t len = (size_t)(nl - line);
            pos += len + 1;
            if (len > 0 && line[len - 1] == '\r') len--;
            if (len >= 4 && (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "LHLO", 4))) {
                reply("250-fastsink\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n"
                      "250-BINARYMIME\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
            } else if (len >= 4 && !strncasecmp(line, "HELO", 4)) {
                reply("250 fastsink\r\n");
            } else if (len == 4 && !strncasecmp(line, "DATA", 4)) {
                reply("354 End data with <CR><LF>.<CR><LF>\r\n");
                mode = DATA;
                memcpy(data + pos - KEEP, "xx\r\n", KEEP); /* "DATA\n" is 5 bytes */
            } else if (len > 5 && !strncasecmp(line, "BDAT ", 5)) {
                char tmp[64];
                size_t l = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
                memcpy(tmp, line, l);
                tmp[l] = 0;
                bdat_left = strtoull(tmp + 5, NULL, 10);
                bdat_last = strcasestr(tmp + 5, "LAST") != NULL;
                mode = BDAT;
            } else if (len == 4 && !strncasecmp(line, "QUIT", 4)) {
                reply("221 2.0.0 Bye\r\n");
                flush(fd);
                return;
            } else {
                reply("250 2.0.0 Ok\r\n");
            }
        }
        /* Pipelined replies: one write once the input is drained. */
        if (outlen && flush(fd) < 0) return;
        if (pos > 0 && pos < have) {
            memmove(data, data + pos, have - pos);
            have -= pos;
        } else if (pos >= have) {
            have = 0;
        }
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    int ls, one = 1;
    if (argc != 2) {
        fprintf(stderr, "usage: fastsink <port>\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 128) < 0) {
        perror("fastsink");
        return 1;
    }
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        serve(fd);
        close(fd);
    }
}
