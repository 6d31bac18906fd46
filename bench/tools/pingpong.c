/* The ceiling of S1 (bench/run.lua): the fastest any client can send
 * N messages over one connection to a server without CHUNKING, such as
 * smtp-sink. With DATA the body may only follow the 354 (RFC 2920 3.1),
 * so one reply wait per message is the floor; this client reaches it
 * with nothing else to do: the transactions are pre-encoded, each write
 * is the body, its terminator and the next MAIL/RCPT/DATA, and replies
 * are only counted and their class checked. No parsing, no checks: a
 * loopback measuring stick, not an SMTP client.
 *   pingpong <host> <port> <count> <msgfile>   (the file CRLF, dot-safe)
 * Prints "ok <count> <seconds>" (connect to QUIT reply). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char in[65536];
static size_t inlen;

static void die(const char *what)
{
    fprintf(stderr, "pingpong: %s\n", what);
    exit(1);
}

/* Reads until 'want' complete replies (final lines) have arrived; every
 * one must be 2xx or 3xx. Bytes after them stay for the next call. */
static void replies(int fd, int want)
{
    while (want > 0) {
        char *nl = memchr(in, '\n', inlen);
        if (nl == NULL) {
            ssize_t n;
            if (inlen == sizeof in)
                die("reply line too long");
            n = recv(fd, in + inlen, sizeof in - inlen, 0);
            if (n <= 0)
                die("connection closed");
            inlen += (size_t)n;
            continue;
        }
        if (nl - in >= 3 && in[3] != '-') {
            if (in[0] != '2' && in[0] != '3')
                die("refused");
            want--;
        }
        inlen -= (size_t)(nl + 1 - in);
        memmove(in, nl + 1, inlen);
    }
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            die("send failed");
        p += w;
        n -= (size_t)w;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char env[] = "MAIL FROM:<bench@example.test>\r\nRCPT TO:<sink@example.test>\r\nDATA\r\n";
    static const char quit[] = "QUIT\r\n";
    struct sockaddr_in sa;
    char *body, *next, *last;
    size_t blen, nlen, llen;
    long count, i;
    int fd, one = 1;
    double t0;
    FILE *f;

    if (argc != 5)
        die("usage: pingpong <host> <port> <count> <msgfile>");
    count = atol(argv[3]);
    if (count < 1)
        die("count must be positive");
    f = fopen(argv[4], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0)
        die("cannot open the message file");
    blen = (size_t)ftell(f);
    rewind(f);
    body = malloc(blen + 3);
    if (body == NULL || fread(body, 1, blen, f) != blen)
        die("cannot read the message file");
    fclose(f);
    memcpy(body + blen, ".\r\n", 3);
    blen += 3;
    /* Body + terminator + the next envelope, or + QUIT for the last. */
    nlen = blen + sizeof env - 1;
    llen = blen + sizeof quit - 1;
    next = malloc(nlen);
    last = malloc(llen);
    if (next == NULL || last == NULL)
        die("out of memory");
    memcpy(next, body, blen);
    memcpy(next + blen, env, sizeof env - 1);
    memcpy(last, body, blen);
    memcpy(last + blen, quit, sizeof quit - 1);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
        die("host must be an IPv4 address");
    t0 = now();
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("cannot connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    replies(fd, 1);
    send_all(fd, "EHLO bench.example.test\r\n", 25);
    replies(fd, 1);
    send_all(fd, env, sizeof env - 1);
    replies(fd, 3);
    for (i = 1; i <= count; i++) {
        if (i < count) {
            send_all(fd, next, nlen);
            replies(fd, 4); /* 250 for the body, then MAIL, RCPT, 354 */
        } else {
            send_all(fd, last, llen);
            replies(fd, 2); /* 250 for the body, 221 */
        }
    }
    close(fd);
    printf("ok %ld %.4f\n", count, now() - t0);
    return 0;
}
