/* smtp.tls_config's `ciphersuites` and `groups` options (issue 26): IANA
 * names turned into the id lists mbedTLS takes, in the user's order, each
 * refused (kind usage) when this build lacks it; lua-smtp's default group
 * order; and the negotiated TLS 1.3 group read from the ServerHello. */
#include "tls_names.h"
#include "err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/ssl_ciphersuites.h>

struct smtp_tls_names {
    int *suites;                    /* 0-terminated, NULL: not given */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    uint16_t *groups;               /* IANA ids, NONE-terminated */
#else
    mbedtls_ecp_group_id *groups;   /* 2.28 takes ECP ids, NONE-terminated */
#endif
};

/* The elliptic-curve groups of RFC 8422 / RFC 8446 4.2.7 that either
 * build can have; finite-field groups are in neither of ours. */
static const struct {
    const char *name;
    uint16_t id;
} known_groups[] = {
    { "x25519", 0x001D }, { "secp256r1", 0x0017 }, { "secp384r1", 0x0018 },
    { "secp521r1", 0x0019 }, { "x448", 0x001E }, { "brainpoolP256r1", 0x001A },
    { "brainpoolP384r1", 0x001B }, { "brainpoolP512r1", 0x001C },
    { "secp256k1", 0x0016 }, { "secp224r1", 0x0015 }, { "secp192r1", 0x0013 },
    { NULL, 0 }
};

/* Our order when the user names none: x25519 first (Everest's constant-time
 * code makes it the cheapest key exchange in our 3.6 build, see README),
 * then the NIST curves servers without it pick. */
static const uint16_t default_groups[] = { 0x001D, 0x0017, 0x0018, 0x0019, 0 };

void smtp_tls_names_free(struct smtp_tls_names *names)
{
    if (names == NULL)
        return;
    free(names->suites);
    free(names->groups);
    free(names);
}

/* IANA "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" is mbedTLS's
 * "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256"; TLS 1.3's "TLS_AES_128_GCM_SHA256"
 * is "TLS1-3-AES-128-GCM-SHA256". 0 when this build has no such suite. */
static int suite_id(const char *iana)
{
    char name[128];
    size_t len = strlen(iana), i, off = 0;
    if (len < 5 || len + 8 >= sizeof name || strncmp(iana, "TLS_", 4) != 0)
        return 0;
    if (strstr(iana, "_WITH_") == NULL) {
        memcpy(name, "TLS1-3-", 7);
        off = 7;
        iana += 4;
        len -= 4;
    }
    for (i = 0; i < len; i++)
        name[off + i] = iana[i] == '_' ? '-' : iana[i];
    name[off + len] = '\0';
    return mbedtls_ssl_get_ciphersuite_id(name);
}

/* The ECP curve behind an IANA group id, when this build has it. */
static const mbedtls_ecp_curve_info *group_curve(uint16_t id)
{
    return mbedtls_ecp_curve_info_from_tls_id(id);
}

static int set_groups(struct smtp_tls_names *nm, const char *const *names, size_t n,
                      char *err, size_t errlen)
{
    const uint16_t *ids = default_groups;
    uint16_t given[32];
    size_t i, k = 0;
    if (n > 0) {
        if (n > sizeof given / sizeof given[0]) {
            snprintf(err, errlen, "TLS option 'groups' names more than %u groups",
                     (unsigned)(sizeof given / sizeof given[0]));
            return SMTP_EUSAGE;
        }
        for (i = 0; i < n; i++) {
            size_t j;
            for (j = 0; known_groups[j].name != NULL; j++)
                if (strcmp(known_groups[j].name, names[i]) == 0)
                    break;
            if (known_groups[j].name == NULL) {
                snprintf(err, errlen, "TLS option 'groups': unknown group '%s' (IANA names such "
                         "as x25519, secp256r1, secp384r1)", names[i]);
                return SMTP_EUSAGE;
            }
            if (group_curve(known_groups[j].id) == NULL) {
                snprintf(err, errlen, "TLS option 'groups': group '%s' is not in this mbedTLS %s build",
                         names[i], MBEDTLS_VERSION_STRING);
                return SMTP_EUSAGE;
            }
            given[i] = known_groups[j].id;
        }
        given[n] = 0;
        ids = given;
    }
    nm->groups = calloc(n + 5, sizeof *nm->groups);
    if (nm->groups == NULL)
        return SMTP_ENOMEM;
    for (i = 0; ids[i] != 0; i++) {
        const mbedtls_ecp_curve_info *c = group_curve(ids[i]);
        if (c == NULL)
            continue;   /* a default group this build lacks */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
        nm->groups[k++] = ids[i];
#else
        nm->groups[k++] = c->grp_id;
#endif
    }
    return SMTP_OK;     /* calloc's zero is NONE in both */
}

int smtp_tls_names_apply(mbedtls_ssl_config *conf,
                         const char *const *suites, size_t nsuites,
                         const char *const *groups, size_t ngroups,
                         struct smtp_tls_names **out, char *err, size_t errlen)
{
    struct smtp_tls_names *nm = calloc(1, sizeof *nm);
    size_t i;
    int rc;
    *out = NULL;
    if (nm == NULL)
        return SMTP_ENOMEM;
    if (nsuites > 0) {
        nm->suites = calloc(nsuites + 1, sizeof *nm->suites);
        if (nm->suites == NULL) {
            smtp_tls_names_free(nm);
            return SMTP_ENOMEM;
        }
        for (i = 0; i < nsuites; i++) {
            nm->suites[i] = suite_id(suites[i]);
            if (nm->suites[i] == 0) {
                snprintf(err, errlen, "TLS option 'ciphersuites': unknown cipher suite '%s' (not an "
                         "IANA name such as TLS_AES_128_GCM_SHA256, or not in this mbedTLS %s build)",
                         suites[i], MBEDTLS_VERSION_STRING);
                smtp_tls_names_free(nm);
                return SMTP_EUSAGE;
            }
        }
        mbedtls_ssl_conf_ciphersuites(conf, nm->suites);
    }
    rc = set_groups(nm, groups, ngroups, err, errlen);
    if (rc != SMTP_OK) {
        smtp_tls_names_free(nm);
        return rc;
    }
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
    mbedtls_ssl_conf_groups(conf, nm->groups);
#else
    mbedtls_ssl_conf_curves(conf, nm->groups);
#endif
    *out = nm;
    return SMTP_OK;
}

const char *smtp_tls_hello_group(const unsigned char *b, size_t n)
{
    unsigned char hs[4096];
    size_t have = 0, off = 0, mlen, p, end, j;
    /* Gather the handshake bytes of the first records. */
    while (off + 5 <= n && b[off] == 22) {
        size_t len = ((size_t)b[off + 3] << 8) | b[off + 4];
        size_t avail = n - off - 5 < len ? n - off - 5 : len;
        if (avail > sizeof hs - have)
            avail = sizeof hs - have;
        memcpy(hs + have, b + off + 5, avail);
        have += avail;
        off += 5 + len;
    }
    if (have < 4 || hs[0] != 2)         /* not a ServerHello */
        return NULL;
    mlen = ((size_t)hs[1] << 16) | ((size_t)hs[2] << 8) | hs[3];
    end = 4 + mlen < have ? 4 + mlen : have;
    p = 4 + 34;                         /* version, random */
    if (p >= end)
        return NULL;
    p += 1 + hs[p] + 3;                 /* session id, suite, compression */
    if (p + 2 > end)
        return NULL;
    p += 2;                             /* extensions length */
    while (p + 4 <= end) {
        unsigned type = ((unsigned)hs[p] << 8) | hs[p + 1];
        size_t elen = ((size_t)hs[p + 2] << 8) | hs[p + 3];
        if (type == 51 && elen >= 2 && p + 6 <= end) {     /* key_share */
            uint16_t id = (uint16_t)((hs[p + 4] << 8) | hs[p + 5]);
            for (j = 0; known_groups[j].name != NULL; j++)
                if (known_groups[j].id == id)
                    return known_groups[j].name;
            return NULL;
        }
        p += 4 + elen;
    }
    return NULL;
}
