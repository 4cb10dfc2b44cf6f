#include "airlockd/adapters/auth.h"

#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

void ald_auth_hash(unsigned char out[32], const char *key, size_t len)
{
    SHA256((const unsigned char *)key, len, out);
}

int ald_auth_key_new(char *key_out, char *id_out, unsigned char hash_out[32])
{
    char secret[65];
    int err = ald_random_hex(secret, 64);
    if (err == 0)
        err = ald_random_hex(id_out + 2, 16);
    if (err == 0) {
        id_out[0] = 'k';
        id_out[1] = '_';
        snprintf(key_out, ALD_KEY_LEN + 1, "alk_%s", secret);
        ald_auth_hash(hash_out, key_out, ALD_KEY_LEN);
    }
    explicit_bzero(secret, sizeof(secret));
    return err;
}

int ald_auth_check(struct ald_store *st, const char *header, struct ald_principal *out)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return AL_EAUTH;
    const char *key = header + 7;
    while (*key == ' ')
        key++;
    size_t len = strlen(key);
    while (len > 0 && key[len - 1] == ' ')
        len--;
    if (len != ALD_KEY_LEN || strncmp(key, "alk_", 4) != 0)
        return AL_EAUTH;
    unsigned char hash[32];
    ald_auth_hash(hash, key, len);
    return ald_store_key_lookup(st, hash, out);
}
