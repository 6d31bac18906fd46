/* Monotonic clock and deadlines: every wait in net.c and tls.c is bounded
 * by what is left of an absolute deadline, never by a fresh duration, so a
 * peer that trickles bytes still hits the phase deadline (SPEC 7). */
#ifndef SMTP_DEADLINE_H
#define SMTP_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC; wall-clock jumps do not move it. */
static inline int64_t smtp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline of 0 or less means "no deadline" (wait forever). */
#define SMTP_NO_DEADLINE 0

/* "Never wait": smtp_net_wait returns SMTP_EWANTREAD / SMTP_EWANTWRITE
 * at once instead of polling, so the operation hands the wait to its
 * caller (an event loop). Checked before any other use of a deadline. */
#define SMTP_NOWAIT INT64_MIN

/* Milliseconds left before 'deadline' as a poll() timeout: -1 for none,
 * 0 once it has passed. */
static inline int smtp_deadline_left_ms(int64_t deadline)
{
    int64_t left;
    if (deadline <= SMTP_NO_DEADLINE)
        return -1;
    left = deadline - smtp_now_ms();
    if (left <= 0)
        return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

#endif
