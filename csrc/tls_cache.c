/* The TLS sessions an smtp.tls_config keeps for resumption (tls.c): at
 * most TLS_CACHE_SLOTS, one per peer name and address; TLS 1.3 tickets
 * used once, 1.2 sessions put back after the handshake that resumed them. */
#include "tls_internal.h"
#include "membio.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void smtp_tls_cache_drop(struct tls_cached *c)
{
    if (c->used)
        mbedtls_ssl_session_free(&c->session);
    c->used = 0;
}

/* ---- session cache -------------------------------------------------------- */

/* The peer a cached session belongs to: the name it was verified for and
 * the address it came from ("name [addr]:port"). The name alone would be
 * enough for safety (only that verified peer can finish an abbreviated
 * handshake); the address saves offering a session to a server that
 * never issued it. */
void smtp_tls_cache_key(struct smtp_tls *s, char *key, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (s->mem != NULL) {
        /* The host's socket knows the peer only by the name it dialled. */
        snprintf(key, cap, "%s [%.56s]", s->name, s->mem->peer);
        return;
    }
    if (getpeername(s->fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
            port = ntohs(in6->sin6_port);
        } else {
            snprintf(addr, sizeof addr, "local");
        }
    }
    snprintf(key, cap, "%s [%s]:%u", s->name, addr, port);
}

static struct tls_cached *cache_find(struct smtp_tls_config *cfg, const char *key)
{
    int i;
    for (i = 0; i < TLS_CACHE_SLOTS; i++)
        if (cfg->cache[i].used && strcmp(cfg->cache[i].key, key) == 0)
            return &cfg->cache[i];
    return NULL;
}

/* The slot for this peer's session: its current one, else a free slot,
 * else the least recently stored. Emptied; the caller fills it. */
static struct tls_cached *cache_slot(struct smtp_tls_config *cfg, const char *key)
{
    struct tls_cached *c = cache_find(cfg, key);
    int i;
    if (c == NULL) {
        c = &cfg->cache[0];
        for (i = 0; i < TLS_CACHE_SLOTS && c->used; i++)
            if (!cfg->cache[i].used || cfg->cache[i].stamp < c->stamp)
                c = &cfg->cache[i];
    }
    smtp_tls_cache_drop(c);
    return c;
}

static void cache_fill(struct smtp_tls_config *cfg, struct tls_cached *c, const char *key)
{
    c->used = 1;
    c->stamp = ++cfg->cache_clock;
    snprintf(c->key, sizeof c->key, "%s", key);
}

/* Offers the cached session for this peer, if any. A session is taken
 * out when offered: TLS 1.3 tickets are single-use (RFC 8446 C.4), and a
 * 1.2 session goes back once the handshake that resumed it completes. */
void smtp_tls_cache_offer(struct smtp_tls *s)
{
    struct tls_cached *c = cache_find(s->cfg, s->cache_key);
    if (c == NULL)
        return;
    /* A session mbedTLS will not take (expired format, other version
     * limits) only costs the full handshake we would do anyway. */
    (void)mbedtls_ssl_set_session(&s->ssl, &c->session);
    /* Kept aside (moved, not copied) in case it has to go back. */
    s->offered = c->session;
    s->offered_ems = c->ems;
    s->offered_has_pin = c->has_pin;
    memcpy(s->offered_pin, c->pin, SMTP_TLS_PIN_LEN);
    s->has_offered = 1;
    c->used = 0;
}

/* Stores the connection's current session (after a TLS 1.2 handshake, or
 * when a TLS 1.3 ticket arrives), replacing this peer's previous one. */
void smtp_tls_cache_store(struct smtp_tls *s)
{
    struct tls_cached *c;

    if (s->cache_key[0] == '\0' || !s->established)
        return;
    c = cache_slot(s->cfg, s->cache_key);
    mbedtls_ssl_session_init(&c->session);
    if (mbedtls_ssl_get_session(&s->ssl, &c->session) != 0) {
        mbedtls_ssl_session_free(&c->session);
        return;
    }
    c->ems = s->ems;
    c->has_pin = s->has_peer_pin;
    memcpy(c->pin, s->peer_pin, SMTP_TLS_PIN_LEN);
    cache_fill(s->cfg, c, s->cache_key);
}

int smtp_tls_is_13(const struct smtp_tls *s)
{
    return strcmp(mbedtls_ssl_get_version(&s->ssl), "TLSv1.3") == 0;
}

/* At the end of a TLS 1.3 connection that resumed with a ticket and got
 * no new one (Postfix issues none after a resumption), the ticket goes
 * back for the next connection, as OpenSSL's clients do: the server that
 * sends no replacement accepts the old one until its lifetime ends. A
 * fresh ticket, when one came, has replaced it already. */
void smtp_tls_cache_return_offered(struct smtp_tls *s)
{
    struct tls_cached *c;

    if (!s->has_offered)
        return;
    s->has_offered = 0;
    if (!(s->established && s->resumed && smtp_tls_is_13(s) && !s->ticket_stored)
        || cache_find(s->cfg, s->cache_key) != NULL) {
        mbedtls_ssl_session_free(&s->offered);
        return;
    }
    c = cache_slot(s->cfg, s->cache_key);
    c->session = s->offered;
    c->ems = s->offered_ems;
    c->has_pin = s->offered_has_pin;
    memcpy(c->pin, s->offered_pin, SMTP_TLS_PIN_LEN);
    cache_fill(s->cfg, c, s->cache_key);
}
