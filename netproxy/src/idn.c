/* IDNA (Unicode host names to punycode) through libidn2, loaded on the first
 * non-ASCII name: most runs never see one, and linking libidn2 (with
 * libunistring) costs every process that embeds the proxy, `airlock run`
 * included, milliseconds of dynamic loading at start-up. */
#include "domain.h"

#include "airlock/error.h"

#include <dlfcn.h>
#include <idn2.h>
#include <pthread.h>
#include <stdlib.h>

typedef int (*to_ascii_fn)(const char *input, char **output, int flags);

static pthread_once_t idn_once = PTHREAD_ONCE_INIT;
static to_ascii_fn idn_to_ascii;

static void idn_load(void)
{
    void *lib = dlopen("libidn2.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib)
        idn_to_ascii = (to_ascii_fn)dlsym(lib, "idn2_to_ascii_8z");
}

int np_idn_to_ascii(const char *utf8, char **out)
{
    pthread_once(&idn_once, idn_load);
    *out = NULL;
    if (!idn_to_ascii)
        return AL_EUNSUPP;
    if (idn_to_ascii(utf8, out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
        free(*out);
        *out = NULL;
        return AL_EINVAL;
    }
    return 0;
}
