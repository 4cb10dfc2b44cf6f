/* Fuzzes airlockd's request-body parsers: the first byte picks the route
 * (session create, exec, signal, decision, policy; 0xfe/0xff a terminal's
 * size), the rest is the body. Every
 * input must be accepted or refused with a complete API error, never crash
 * or leak; an accepted body's network policy survives the netproxy's wire
 * form (encode, strict decode, encode again: the same). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "airlock/netpolicy.h"

#include "airlockd/api/body.h"
#include "airlockd/core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the network policy of an accepted body encodes to a wire form
 * the netproxy's strict decoder takes back unchanged. */
static int wire_round_trips(const struct al_netpolicy *net)
{
    json_t *wire = al_netpolicy_to_json(net);
    struct al_netpolicy back;
    int ok = wire && al_netpolicy_from_json(&back, wire) == 0;
    if (ok) {
        json_t *again = al_netpolicy_to_json(&back);
        ok = again && json_equal(wire, again);
        json_decref(again);
        al_netpolicy_free(&back);
    }
    json_decref(wire);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ald_config cfg;
    static int ready;
    if (!ready) {
        /* a grant, so the grant paths are reached too */
        static const char conf[] = "{\"grants\": {\"alice\": {\"allowedAddresses\":"
                                   " [\"10.20.0.0/16\", \"2001:db8::/32\"],"
                                   " \"allowLocalBinding\": true,"
                                   " \"credentials\": [\"openai\"]}}}";
        if (ald_config_init(&cfg) < 0 ||
            ald_config_load_buffer(&cfg, "fuzz", conf, sizeof(conf) - 1) < 0)
            return 0;
        ready = 1;
    }
    if (size < 1 || size > 65536)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct ald_apierr e;
    memset(&e, 0, sizeof(e));
    int err = 0;
    uint32_t rows = 0, cols = 0;
    /* 0xfe, 0xff: a terminal's size (POST …/resize, a WebSocket text message) */
    if (data[0] >= 0xfe) {
        err = data[0] == 0xfe ? ald_body_resize(&rows, &cols, body, len, &e)
                              : ald_body_tty_message(&rows, &cols, body, len, &e);
        if (err == 0 && (rows < 1 || cols < 1 || rows > 4096 || cols > 4096))
            __builtin_trap();
        if (err < 0 && (e.status < 400 || !e.code))
            __builtin_trap();
        return 0;
    }
    switch (data[0] % 5) {
    case 0: {
        struct ald_create_req r;
        if ((err = ald_body_create(&r, body, len, &cfg, "alice", &e)) == 0) {
            if (!wire_round_trips(&r.policy.net))
                __builtin_trap();
            ald_create_req_free(&r);
        }
        break;
    }
    case 1: {
        struct ald_exec_req r;
        if ((err = ald_body_exec(&r, body, len, "/workspace", &e)) == 0) {
            /* argv is NULL-terminated and non-empty */
            if (!r.argv || !r.argv[0] || !r.cwd || !r.env)
                __builtin_trap();
            ald_exec_req_free(&r);
        }
        break;
    }
    case 2: {
        int sig = 0;
        if ((err = ald_body_signal(&sig, body, len, &e)) == 0 && (sig < 1 || sig > 64))
            __builtin_trap();
        break;
    }
    case 3: {
        json_t *pol = NULL;
        struct al_netpolicy net;
        struct al_strlist warnings = AL_STRLIST_INIT;
        if ((err = ald_body_policy(&pol, &net, &warnings, body, len, &cfg, "alice", &e)) == 0 &&
            (!json_is_object(pol) || !wire_round_trips(&net)))
            __builtin_trap();
        al_netpolicy_free(&net);
        al_strlist_free(&warnings);
        json_decref(pol);
        break;
    }
    default: {
        int allow = -1;
        if ((err = ald_body_decision(&allow, body, len, &e)) == 0 && allow != 0 && allow != 1)
            __builtin_trap();
        break;
    }
    }
    /* a refusal always carries a status and a code */
    if (err < 0 && (e.status < 400 || !e.code))
        __builtin_trap();
    return 0;
}
