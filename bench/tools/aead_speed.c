/* The cipher ceiling of S4 (bench/run.lua): how fast mbedTLS, the TLS
 * library lua-smtp links, seals 16 KiB TLS records with each AEAD a
 * server may pick. A client cannot send TLS faster than it encrypts, so
 * this bounds lua-smtp's S4 text rate; `openssl speed` gives curl's.
 *   aead_speed [seconds]   prints "<cipher> <MB/s>" lines (MB = 10^6) */
#define _POSIX_C_SOURCE 200809L
#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORD 16384

static unsigned char in[RECORD], out[RECORD], key[32], iv[12], aad[13], tag[16];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void gcm(unsigned keybits, double seconds)
{
    mbedtls_gcm_context ctx;
    double t0, t;
    long n = 0;
    mbedtls_gcm_init(&ctx);
    if (mbedtls_gcm_setkey(&ctx, MBEDTLS_CIPHER_ID_AES, key, keybits) != 0) {
        fprintf(stderr, "aead_speed: AES-%u-GCM not available\n", keybits);
        exit(1);
    }
    t0 = now();
    do {
        iv[11] = (unsigned char)n;
        mbedtls_gcm_crypt_and_tag(&ctx, MBEDTLS_GCM_ENCRYPT, RECORD, iv, sizeof iv, aad, sizeof aad,
                                  in, out, sizeof tag, tag);
        n++;
    } while ((t = now() - t0) < seconds);
    mbedtls_gcm_free(&ctx);
    printf("AES-%u-GCM %.1f\n", keybits, (double)n * RECORD / t / 1e6);
}

static void chacha(double seconds)
{
    mbedtls_chachapoly_context ctx;
    double t0, t;
    long n = 0;
    mbedtls_chachapoly_init(&ctx);
    mbedtls_chachapoly_setkey(&ctx, key);
    t0 = now();
    do {
        iv[11] = (unsigned char)n;
        mbedtls_chachapoly_encrypt_and_tag(&ctx, RECORD, iv, aad, sizeof aad, in, out, tag);
        n++;
    } while ((t = now() - t0) < seconds);
    mbedtls_chachapoly_free(&ctx);
    printf("CHACHA20-POLY1305 %.1f\n", (double)n * RECORD / t / 1e6);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0 || seconds > 10)
        seconds = 1.0;
    memset(in, 'x', sizeof in);
    memset(key, 7, sizeof key);
    gcm(128, seconds);
    gcm(256, seconds);
    chacha(seconds);
    return 0;
}
