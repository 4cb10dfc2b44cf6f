/* libFuzzer: the request path of a TLS-terminated tunnel
 * (np_tt_request_process: origin-form head, Host check, path normalisation,
 * request rules, credential rewrite), with a fixed session: two masked
 * credentials, one allowed for the host, one not; a request rule for the
 * host. Also the response-head parser and the chunked data decoder.
 * Invariants: no sentinel ever reaches the rewritten head; the forbidden
 * credential's real value never appears unless the input held it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/credmask.h"
#include "airlock/netpolicy.h"
#include "http_parse.h"
#include "tls_term.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct al_credset g_set;
static struct al_netpolicy g_pol;
static const char REAL_OK[] = "ghp_AAAAbbbbCCCCddddEEEEffffGGGGhhhh1234";
static const char REAL_NO[] = "sk-short1";

static void setup(void)
{
    struct al_strlist a = {0}, b = {0};
    al_strlist_push(&a, "api.example.com");
    al_strlist_push(&b, "other.example.com");
    al_credset_add(&g_set, "OK_TOKEN", REAL_OK, strlen(REAL_OK), &a,
                   "ghp_ZZZZyyyyXXXXwwwwVVVVuuuuTTTTssss9876");
    al_credset_add(&g_set, "NO_TOKEN", REAL_NO, strlen(REAL_NO), &b,
                   "sk-SENTINELsentinel0123456789ab");
    al_strlist_free(&a);
    al_strlist_free(&b);
    al_netpolicy_init(&g_pol);
    g_pol.request_rules = calloc(1, sizeof(*g_pol.request_rules));
    g_pol.n_request_rules = 1;
    g_pol.request_rules[0].host = strdup("api.example.com");
    al_strlist_push(&g_pol.request_rules[0].methods, "GET");
    al_strlist_push(&g_pol.request_rules[0].methods, "POST");
    al_strlist_push(&g_pol.request_rules[0].paths, "/repos/**");
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    const char *buf = (const char *)data;
    struct np_tt_ctx ctx = {
        .host = "api.example.com",
        .port = 443,
        .pol = &g_pol,
        .creds = &g_set,
        .inject_ok = 1, /* OK_TOKEN only */
    };
    struct np_tt_req r;
    np_tt_req_init(&r);
    int n = np_tt_request_process(&ctx, buf, size, &r);
    if (n > 0) {
        if ((size_t)n > size && size > 0)
            __builtin_trap();
        if (r.status == 0) {
            if (al_cred_find_sentinel(&g_set, r.head.ptr, r.head.len) >= 0)
                __builtin_trap(); /* a sentinel left in the forwarded head */
            if (contains(r.head.ptr, r.head.len, REAL_NO) && !contains(buf, size, REAL_NO) &&
                !contains(buf, size, "c2stc2hvcnQx")) /* base64 of the value's start */
                __builtin_trap();                     /* a real value the host may not have */
            if (r.head.len < 4 || memcmp(r.head.ptr + r.head.len - 4, "\r\n\r\n", 4) != 0)
                __builtin_trap();
        } else if (r.status < 400 || r.status > 505 || !r.error || !r.why[0]) {
            __builtin_trap();
        }
    }
    np_tt_req_free(&r);

    struct np_http_response rs;
    int m = np_http_parse_response(&rs, buf, size);
    if (m > 0 && ((size_t)m > size || rs.status < 100 || rs.status > 999 ||
                  (rs.has_content_length && rs.chunked)))
        __builtin_trap();
    if (m > 0 && rs.chunked) {
        struct np_chunked ch;
        size_t used, pos = (size_t)m;
        np_chunked_init(&ch);
        while (pos < size) {
            uint64_t d = np_chunked_data_left(&ch);
            size_t take = d ? (size - pos < d ? size - pos : (size_t)d) : 1;
            int rc = np_chunked_feed(&ch, buf + pos, take, &used);
            if (rc < 0 || rc == 1)
                break;
            pos += take;
        }
    }
    return 0;
}
