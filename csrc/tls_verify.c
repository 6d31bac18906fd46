/* Certificate names for tls.c: DNS names follow RFC 6125 6.4 (a wildcard
 * only as the whole leftmost label) and IP literals are matched against
 * iPAddress SANs here, because mbedTLS 2.28 does not (3.6 would; one path
 * serves both), as curl keeps vtls/hostcheck.c apart. */
#include "tls_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

/* An IP literal, optionally in brackets; returns its length or 0. */
size_t smtp_tls_parse_ip(const char *name, unsigned char ip[16])
{
    char tmp[64];
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        if (len - 2 >= sizeof tmp)
            return 0;
        memcpy(tmp, name + 1, len - 2);
        tmp[len - 2] = '\0';
    } else {
        if (len >= sizeof tmp)
            return 0;
        memcpy(tmp, name, len + 1);
    }
    if (inet_pton(AF_INET, tmp, ip) == 1)
        return 4;
    if (inet_pton(AF_INET6, tmp, ip) == 1)
        return 16;
    return 0;
}

/* Case-insensitive ASCII comparison of two byte ranges. */
static int ieq(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* Does the certificate's DNS name 'pat' (plen bytes, may hold anything)
 * cover 'host'? A wildcard is accepted only as the whole leftmost label,
 * matches exactly one label, and needs at least two labels after it
 * ("*.com" covers nothing). */
static int dns_match(const char *pat, size_t plen, const char *host)
{
    size_t hlen = strlen(host);
    if (plen > 0 && pat[plen - 1] == '.')
        plen--;
    if (plen == 0 || memchr(pat, '\0', plen) != NULL)
        return 0;
    if (plen >= 2 && pat[0] == '*' && pat[1] == '.') {
        const char *rest = pat + 1, *hdot = strchr(host, '.');  /* ".example.org" */
        size_t rlen = plen - 1;
        if (memchr(rest + 1, '*', rlen - 1) != NULL || memchr(rest + 1, '.', rlen - 1) == NULL)
            return 0;
        if (hdot == NULL || hdot == host)
            return 0;
        return (size_t)(host + hlen - hdot) == rlen && ieq(hdot, rest, rlen);
    }
    if (memchr(pat, '*', plen) != NULL)
        return 0;
    return plen == hlen && ieq(pat, host, hlen);
}

/* GeneralName tags inside subjectAltName (RFC 5280 4.2.1.6). */
#define SAN_DNS 0x82
#define SAN_IP 0x87

typedef void (*san_fn)(void *ud, int tag, const unsigned char *p, size_t len);

/* Calls fn for each GeneralName of the subjectAltName extension. Returns 0
 * when the certificate has that extension, -1 when it has none. Reads the
 * raw DER because mbedTLS 2.28 drops iPAddress entries from its list. */
static int walk_sans(const mbedtls_x509_crt *crt, san_fn fn, void *ud)
{
    static const unsigned char san_oid[] = { 0x55, 0x1d, 0x11 };  /* 2.5.29.17 */
    unsigned char *p = crt->v3_ext.p, *end;
    size_t len;
    if (p == NULL || crt->v3_ext.len == 0)
        return -1;
    end = p + crt->v3_ext.len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return -1;
    end = p + len;
    while (p < end) {
        unsigned char *ext_end, *q, *qend;
        int is_san, critical = 0;
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return -1;
        ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OID) != 0)
            return -1;
        is_san = len == sizeof san_oid && memcmp(p, san_oid, len) == 0;
        p += len;
        if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN
            && mbedtls_asn1_get_bool(&p, ext_end, &critical) != 0)
            return -1;
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return -1;
        if (!is_san) {
            p = ext_end;
            continue;
        }
        q = p;
        qend = p + len;
        if (mbedtls_asn1_get_tag(&q, qend, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return -1;
        qend = q + len;
        while (q < qend) {
            int tag = *q++;
            if (mbedtls_asn1_get_len(&q, qend, &len) != 0)
                return -1;
            fn(ud, tag, q, len);
            q += len;
        }
        return 0;
    }
    return -1;
}

struct name_check {
    const struct smtp_tls *s;
    int matched;
    char *names;        /* comma-separated list for messages */
    size_t cap;
};

static void add_name(struct name_check *nc, const char *p, size_t len)
{
    size_t used = strlen(nc->names), i;
    if (used + len + 3 >= nc->cap) {
        if (used + 4 < nc->cap && strcmp(nc->names + used - (used >= 3 ? 3 : used), "...") != 0)
            memcpy(nc->names + used, "...", 4);
        return;
    }
    if (used > 0) {
        memcpy(nc->names + used, ", ", 2);
        used += 2;
    }
    for (i = 0; i < len; i++)   /* the name is peer data: keep it printable */
        nc->names[used++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    nc->names[used] = '\0';
}

static void check_san(void *ud, int tag, const unsigned char *p, size_t len)
{
    struct name_check *nc = ud;
    const struct smtp_tls *s = nc->s;
    if (tag == SAN_DNS) {
        add_name(nc, (const char *)p, len);
        if (s->iplen == 0 && dns_match((const char *)p, len, s->name))
            nc->matched = 1;
    } else if (tag == SAN_IP && (len == 4 || len == 16)) {
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(len == 4 ? AF_INET : AF_INET6, p, text, sizeof text) != NULL)
            add_name(nc, text, strlen(text));
        if (s->iplen == len && memcmp(s->ip, p, len) == 0)
            nc->matched = 1;
    }
}

/* Matches the leaf against the peer name and records its names. Without a
 * subjectAltName extension the subject CNs stand in for DNS names (RFC
 * 6125 6.4.4); IP literals are only ever matched against iPAddress. */
static int leaf_matches(struct smtp_tls *s, const mbedtls_x509_crt *crt)
{
    struct name_check nc;
    nc.s = s;
    nc.matched = 0;
    nc.names = s->cert_names;
    nc.cap = sizeof s->cert_names;
    s->cert_names[0] = '\0';
    if (walk_sans(crt, check_san, &nc) != 0) {
        const mbedtls_x509_name *n;
        for (n = &crt->subject; n != NULL; n = n->next) {
            if (n->oid.p == NULL || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
                continue;
            add_name(&nc, (const char *)n->val.p, n->val.len);
            if (s->iplen == 0 && dns_match((const char *)n->val.p, n->val.len, s->name))
                nc.matched = 1;
        }
    }
    if (s->cert_names[0] == '\0')
        snprintf(s->cert_names, sizeof s->cert_names, "no host name");
    return nc.matched;
}

/* Runs inside mbedTLS for each certificate of the chain, root first. Pure
 * C: it only adds our own name check to the leaf's flags, so a mismatch
 * fails the handshake under MBEDTLS_SSL_VERIFY_REQUIRED. mbedTLS checks
 * DNS names too (mbedtls_ssl_set_hostname); both must agree. */
int smtp_tls_verify_cb(void *ud, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct smtp_tls *s = ud;
    if (depth == 0 && s->name[0] != '\0' && !leaf_matches(s, crt))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    s->vflags |= *flags;
    return 0;
}
