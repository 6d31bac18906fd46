/* idna_to_ascii(domain) -> A-label form | nil, "usage", reason.
 * libidn2 does the whole job (UTS 46 mapping, NFC, IDNA2008 validity,
 * Punycode); this file only guards its input and frees its output. The
 * caller (lua/smtp/idna.lua) skips the call for pure-ASCII names. */
#include "lidn.h"
#include "lsmtp.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

#include <idn2.h>

/* RFC 1035 2.3.4: longer names cannot be looked up or sent anyway; the
 * bound also keeps libidn2's work per call small. */
#define IDN_MAX_INPUT 1024

static int lidna_to_ascii(lua_State *L)
{
    size_t len;
    const char *in = luaL_checklstring(L, 1, &len);
    char *out = NULL;
    char why[256];
    int rc;
    if (len == 0)
        return smtp_push_failure(L, SMTP_EUSAGE, "empty domain name");
    if (len > IDN_MAX_INPUT)
        return smtp_push_failure(L, SMTP_EUSAGE, "domain name longer than 1024 bytes");
    /* A C string would end at the NUL and convert only a prefix. */
    if (memchr(in, '\0', len) != NULL)
        return smtp_push_failure(L, SMTP_EUSAGE, "domain name contains NUL");
    /* Non-transitional UTS 46 (as curl and browsers do): "ß" stays ß, it
     * is not mapped to "ss". NFC first: input may come decomposed. */
    rc = idn2_to_ascii_8z(in, &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        snprintf(why, sizeof why, "%s (libidn2 %s)", idn2_strerror(rc), idn2_strerror_name(rc));
        return smtp_push_failure(L, SMTP_EUSAGE, why);
    }
    lua_pushstring(L, out);
    idn2_free(out);
    return 1;
}

void lidn_open(lua_State *L)
{
    lua_pushcfunction(L, lidna_to_ascii);
    lua_setfield(L, -2, "idna_to_ascii");
}
