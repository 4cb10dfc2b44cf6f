/* Fuzzes the node signature check (airlockd/adapters/peer.h): the input is
 * "METHOD URI\n" then header lines "Name: value\n" (any bytes in the
 * values, as a peer may send). ald_peer_verify must accept or refuse it,
 * never crash or read out of bounds; an accepted request's principal has a
 * non-empty user and the node id is one it could have sent. Every fourth
 * input is first signed correctly (with the values it names) so the code
 * after the signature check (principal decoding, nonce set) is reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

#include "airlockd/adapters/peer.h"

#include "airlock/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdrs {
    char *name[16], *value[16];
    int n;
};

static const char *hdr_fn(void *cls, const char *name)
{
    struct hdrs *h = cls;
    for (int i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ald_peer_guard *g;
    static const unsigned char k[32] = {1, 2, 3};
    if (!g && ald_peer_guard_new(64, &g) < 0)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *line = text, *nl = strchr(line, '\n');
    if (!nl) {
        free(text);
        return 0;
    }
    *nl = '\0';
    char *sp = strchr(line, ' ');
    const char *method = line, *uri = sp ? sp + 1 : "/";
    if (sp)
        *sp = '\0';
    struct hdrs h = {0};
    line = nl + 1;
    while (line && *line && h.n < 16) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strstr(line, ": ");
        if (colon) {
            *colon = '\0';
            h.name[h.n] = line;
            h.value[h.n++] = colon + 2;
        }
        line = nl ? nl + 1 : NULL;
    }
    char sig[70];
    if (size % 4 == 0) {
        /* signed as the document says, over whatever the headers hold */
        const char *part[6] = {"X-Airlock-Time",      "X-Airlock-Nonce",       "X-Airlock-Node",
                               "X-Airlock-Principal", "X-Airlock-Body-SHA256", NULL};
        size_t cap = 68 + strlen(method) + strlen(uri) + size;
        char *st = malloc(cap);
        if (st) {
            const char *v[5];
            for (int i = 0; i < 5; i++)
                v[i] = hdr_fn(&h, part[i]) ? hdr_fn(&h, part[i]) : "";
            /* the receiving node ("n2", the one verify is told it is)
             * follows the sender */
            int n = snprintf(st, cap, "airlock-node-v1\n%s\n%s\n%s\n%s\n%s\nn2\n%s\n%s\n", method,
                             uri, v[0], v[1], v[2], v[3], v[4]);
            unsigned char mac[32];
            unsigned int ml = 32;
            if (n > 0 && (size_t)n < cap &&
                HMAC(EVP_sha256(), k, 32, (unsigned char *)st, (size_t)n, mac, &ml) && h.n < 16) {
                memcpy(sig, "v1=", 3);
                for (int i = 0; i < 32; i++)
                    snprintf(sig + 3 + 2 * i, 3, "%02x", mac[i]);
                h.name[h.n] = "X-Airlock-Signature";
                h.value[h.n] = sig;
                /* ahead of any signature in the input */
                for (int i = h.n; i > 0; i--) {
                    char *tn = h.name[i], *tv = h.value[i];
                    h.name[i] = h.name[i - 1], h.value[i] = h.value[i - 1];
                    h.name[i - 1] = tn, h.value[i - 1] = tv;
                }
                h.n++;
            }
            free(st);
        }
    }
    struct ald_principal who;
    unsigned char want[32];
    char node[64];
    const char *reason = NULL;
    int err = ald_peer_verify(g, k, "n2", method, uri, NULL, hdr_fn, &h, 1765135200123ULL, &who,
                              want, node, &reason);
    if (err == 0 && (!who.user[0] || !node[0]))
        abort();
    if (err < 0 && !reason)
        abort();
    free(text);
    return 0;
}
