/* The fixed credential sets the credmask fuzz targets rewrite with.
 *
 * "delimited": every real value is \x01...\x02 with neither byte inside,
 * and every sentinel starts with 'Q' and has no other 'Q', so no two values
 * (or two sentinels) can overlap in a text: a real value in a rewrite's
 * output can only have come from its input, and every sentinel occurrence
 * in an input is a match.
 * "nested": real values that are prefixes and substrings of one another, for
 * the held-back bytes of a stream. */
#ifndef FUZZ_CREDSET_H
#define FUZZ_CREDSET_H

#include <stdlib.h>
#include <string.h>

#include "airlock/credmask.h"

static const char *const delimited[][3] = {
    /* name, real, sentinel */
    {"GITHUB", "\x01ghp_real_github_value\x02", "Qghp_SENTINEL1sentinel1xy"}, /* same length */
    {"NPM", "\x01npm\x02", "Qnpm_SENTINEL2sentinel2"},                        /* longer */
    {"AWS", "\x01aws-key-real\x02", "QAKIA3"},                                /* shorter */
};

static const char *const nested[][3] = {
    {"A", "secret", "SEKRIT"},
    {"B", "secret123", "ZEKRIT456"},
    {"C", "cre", "CRE-LONGER"},
    {"D", "t12", "T12"},
};

static void fuzz_credset(struct al_credset *set, const char *const (*v)[3], size_t n)
{
    set->v = NULL;
    set->len = 0;
    for (size_t i = 0; i < n; i++)
        if (al_credset_add(set, v[i][0], v[i][1], strlen(v[i][1]), NULL, v[i][2]) != 0)
            abort();
}

#endif
