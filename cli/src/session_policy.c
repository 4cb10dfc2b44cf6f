/* `airlock session policy`: the network policy of a running session, shown
 * (GET /v1/sessions/ID/policy) or changed (PATCH of the whole network part:
 * read, edited here, written back). */
#include "session.h"

#include "airlock/error.h"
#include "airlock/termtext.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One requested change. */
struct edit {
    const char *key;   /* network.<key> */
    const char *value; /* entry to add to it, or NULL */
    const char *drop;  /* entry to remove from `key`, or NULL */
};

/* Removes every entry equal to `s` from the array `arr`. */
static void list_drop(json_t *arr, const char *s)
{
    for (size_t i = json_array_size(arr); i-- > 0;)
        if (json_is_string(json_array_get(arr, i)) &&
            strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            json_array_remove(arr, i);
}

/* network.<key> as an array (created when missing). */
static json_t *list_of(json_t *net, const char *key)
{
    json_t *arr = json_object_get(net, key);
    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(net, key, arr);
    }
    return arr;
}

static void list_add(json_t *net, const char *key, const char *s)
{
    json_t *arr = list_of(net, key);
    list_drop(arr, s);
    json_array_append_new(arr, json_string(s));
}

/* Prints one list ("  allowedDomains: a, b" or "(none)"), entries escaped. */
static void print_list(json_t *net, const char *key)
{
    json_t *arr = json_object_get(net, key), *v;
    size_t i;
    printf("%-18s", key);
    if (json_array_size(arr) == 0)
        fputs(" (none)", stdout);
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        putchar(i ? ',' : ' ');
        if (i)
            putchar(' ');
        al_term_put(stdout, s, AL_TERM_KEEP_UTF8);
    }
    putchar('\n');
}

static void print_policy(json_t *doc)
{
    json_t *net = json_object_get(doc, "network");
    print_list(net, "allowedDomains");
    print_list(net, "deniedDomains");
    print_list(net, "allowedAddresses");
    printf("%-18s %s\n", "allowAllDomains",
           json_is_true(json_object_get(net, "allowAllDomains")) ? "on" : "off");
    printf("%-18s %s\n", "requireSniMatch",
           json_is_false(json_object_get(net, "requireSniMatch")) ? "off" : "on");
    printf("%-18s %s\n", "strictAllowlist",
           json_is_true(json_object_get(net, "strictAllowlist")) ? "on" : "off");
}

int session_cmd_policy(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"allow-domain", required_argument, NULL, 'a'},
        {"deny-domain", required_argument, NULL, 'd'},
        {"forget-domain", required_argument, NULL, 'f'},
        {"allow-address", required_argument, NULL, 'A'},
        {"forget-address", required_argument, NULL, 'F'},
        {"allow-all-domains", required_argument, NULL, 'W'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct edit edits[64];
    size_t n = 0;
    int opt, json_out = 0, all = -1, rc = CL_EXIT_API;
    while ((opt = session_getopt(argc, argv, "", opts)) != -1) {
        if (opt == 'j') {
            json_out = 1;
            continue;
        }
        if (opt == 'W') {
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                return session_usage_error("--allow-all-domains is on or off");
            all = strcmp(optarg, "on") == 0;
            continue;
        }
        if (opt != 'a' && opt != 'd' && opt != 'f' && opt != 'A' && opt != 'F')
            return opt == 'h' ? 0 : CL_EXIT_USAGE;
        if (n == sizeof(edits) / sizeof(edits[0]))
            return session_usage_error("policy: at most %zu changes at once", n);
        /* a domain is in one list at a time: allowing it drops a denial */
        edits[n++] = opt == 'a'   ? (struct edit){"allowedDomains", optarg, NULL}
                     : opt == 'd' ? (struct edit){"deniedDomains", optarg, NULL}
                     : opt == 'f' ? (struct edit){"allowedDomains", NULL, optarg}
                     : opt == 'A' ? (struct edit){"allowedAddresses", optarg, NULL}
                                  : (struct edit){"allowedAddresses", NULL, optarg};
        if (opt == 'a' || opt == 'd' || opt == 'f') {
            if (n == sizeof(edits) / sizeof(edits[0]))
                return session_usage_error("policy: at most %zu changes at once", n);
            edits[n++] =
                (struct edit){opt == 'd' ? "allowedDomains" : "deniedDomains", NULL, optarg};
        }
    }
    if (optind + 1 != argc)
        return session_usage_error("policy wants one session id");
    struct al_buf path;
    json_t *doc = NULL, *after = NULL;
    if (session_path(&path, argv[optind], "/policy") < 0)
        return CL_EXIT_API;
    if (cl_call_json((void **)&doc, c, "GET", path.ptr, NULL, NULL, NULL) < 0)
        goto out;
    if (n == 0 && all < 0) {
        if (json_out) {
            char *s = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
            if (s)
                puts(s);
            free(s);
        } else {
            print_policy(doc);
        }
        rc = 0;
        goto out;
    }
    json_t *net = json_object_get(doc, "network");
    if (!json_is_object(net)) {
        fprintf(stderr, "airlock: session: the policy has no \"network\" object\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (edits[i].value)
            list_add(net, edits[i].key, edits[i].value);
        if (edits[i].drop)
            list_drop(list_of(net, edits[i].key), edits[i].drop);
    }
    if (all >= 0)
        json_object_set_new(net, "allowAllDomains", json_boolean(all));
    /* the whole network part goes back (PATCH replaces it): a change made
     * by someone else between the GET and this PATCH is overwritten */
    if (cl_call_json((void **)&after, c, "PATCH", path.ptr, doc, NULL, NULL) < 0)
        goto out;
    session_warnings_print(after);
    json_decref(after);
    after = NULL;
    if (cl_call_json((void **)&after, c, "GET", path.ptr, NULL, NULL, NULL) < 0)
        goto out;
    if (json_out) {
        char *s = json_dumps(after, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (s)
            puts(s);
        free(s);
    } else {
        print_policy(after);
    }
    rc = 0;
out:
    json_decref(doc);
    json_decref(after);
    al_buf_free(&path);
    return rc;
}
