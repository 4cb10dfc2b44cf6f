/* The push leak guard's scanner: finds well-known secret formats and the real
 * upstream credentials in pushed data, in a process that holds none of them.
 *
 * The key holder, which has the plaintext credentials, builds a fingerprint
 * set with gp_secretset_build() and sends the blob to the scanning process,
 * which loads it with gp_secretset_load() and scans with gp_scan_buffer2() or
 * a streaming struct gp_scanner. The blob and the loaded set hold no secret
 * and no 8-byte run of one in clear.
 *
 * Scheme. Per blob: a random AES-128 key K and a random 32-byte salt. For a
 * secret of length L (GP_SECRET_MIN..GP_SECRET_MAX) let k = min(16, L) and the
 * step s = L - k + 1. The blob stores, for every offset j in 0..L-k, the
 * 64-bit fingerprint of the k-byte block b_j = secret[j..j+k):
 *     fp(b) = first 8 bytes of AES-128_K(B) XOR B,
 * B being b padded to 16 bytes with bytes of value k when k < 16 (the
 * Matyas-Meyer-Oseas one-way function with a fixed key), and the digest
 * SHA-256(salt || secret). Every occurrence of the secret in data fully
 * contains a k-byte block that starts at a multiple of s, so the scanner
 * fingerprints only the blocks at positions 0, s, 2s, ... (for each distinct
 * length), looks them up, and on a hit for offset j confirms the L-byte window
 * starting j bytes earlier against the digest. No false positive but a
 * SHA-256 collision; no miss.
 *
 * What someone who reads the scanner's memory (blob, key, salt) can do: the
 * key is known to them, so the secrecy rests on fp and the digest being
 * one-way, not on a PRF key (fixed-key MMO is one-way when AES is modelled
 * as an ideal cipher; SipHash is a PRF only while its key is secret;
 * HMAC-SHA256 would be one-way too, at about 100 times the cost per block,
 * measured through OpenSSL's EVP interface). They learn how many secrets
 * there are and their lengths. They can test a guess of the whole secret,
 * and of any k-byte window of it at a known offset; the windows overlap, so
 * once one window is found the next offsets give one character each. A
 * secret therefore falls at the cost of brute-forcing its least random
 * 16-byte window: about 2^71 AES operations for a GitHub `ghp_` token (12
 * unknown base62 characters after the prefix), 2^64 for 16 hex characters,
 * and the whole secret for secrets shorter than 16 bytes (cheap when their
 * alphabet is small). Secrets of low entropy (words, short PINs) are
 * guessable from the blob.
 *
 * Scanning cost: one AES block per s bytes per distinct secret length (a
 * length-40 secret: one per 25 bytes) and one vectorised pass for the
 * patterns; each distinct length of 16 bytes or less costs an AES block per
 * byte. A secret whose 16-byte windows repeat ("aaaa...b") makes data full of
 * that window cost a SHA-256 per candidate. bench/gitproxy/scan_bench.c
 * measures it.
 */
#ifndef AIRLOCK_GP_SCAN_H
#define AIRLOCK_GP_SCAN_H

#include <stddef.h>

#include "airlock/buf.h"

#define GP_SECRET_MIN    8    /* shorter secrets are skipped (not looked for) */
#define GP_SECRET_MAX    1024 /* longer secrets are refused */
#define GP_SECRETSET_MAX 1024 /* secrets in one set */
/* The largest blob gp_secretset_load() accepts (every secret of the longest
 * length): header, then per secret 2 + 32 + 8 * (L - 15) bytes. */
#define GP_SECRETSET_BLOB_MAX (60u + (size_t)GP_SECRETSET_MAX * (34u + 8u * (GP_SECRET_MAX - 15u)))
/* The longest match of a well-known pattern (a PEM header line). */
#define GP_SCAN_PATTERN_WINDOW 127

typedef struct gp_secretset gp_secretset;

/* Key-holder side. Appends to `out` a self-contained fingerprint blob for
 * secrets[0..n), each a NUL-terminated string. Secrets shorter than
 * GP_SECRET_MIN bytes are skipped. Returns the number skipped (>= 0), or
 * AL_ETOOBIG (a secret is longer than GP_SECRET_MAX, more than
 * GP_SECRETSET_MAX secrets, or `out` is full), AL_ENOMEM, AL_ERROR (no
 * randomness); on error `out` is as it was. Temporary copies of secret bytes
 * are wiped. Format (integers little-endian):
 *     "ALKSCAN1" | key[16] | salt[32] | u32 count |
 *     count * ( u16 L | SHA-256(salt || secret)[32] | u64 fp[L - k + 1] )
 * fp[j] being the fingerprint of the block at offset j. */
int gp_secretset_build(struct al_buf *out, const char *const *secrets, size_t n);

/* Scanner side. Parses a blob from gp_secretset_build() (untrusted: length,
 * counts and every field checked, trailing bytes refused). On success *out is
 * a new set, read-only and shareable between threads, freed with
 * gp_secretset_free(); on error (AL_EINVAL malformed, AL_ETOOBIG over
 * GP_SECRETSET_BLOB_MAX, AL_ENOMEM, AL_ERROR no AES) *out is NULL. The
 * process's first successful load (an empty set will do) initialises
 * OpenSSL, which reads its configuration file: do it before a seccomp filter
 * forbids open(); scanning opens nothing. */
int gp_secretset_load(gp_secretset **out, const void *blob, size_t len);

/* Frees a set (NULL is fine). No scanner of it may be in use. */
void gp_secretset_free(gp_secretset *set);

/* Secrets in the set (0 for NULL). */
size_t gp_secretset_count(const gp_secretset *set);

/* Looks in data[0..len) for the well-known formats only: GitHub tokens
 * (`ghp_ gho_ ghu_ ghs_ ghr_` + 36 of [A-Za-z0-9_]; `github_pat_` + 22), AWS
 * access key ids (`AKIA` + 16 of [A-Z0-9]) and PEM private keys
 * (`-----BEGIN `, then `PRIVATE KEY-----` ending within 127 bytes of it on the
 * same line). Returns 1 and sets *what to a static description on a hit, else
 * 0. */
int gp_scan_patterns(const char **what, const void *data, size_t len);

/* Looks in data[0..len) for the secrets of `set` (may be NULL) and the
 * patterns. Returns 1 on a hit with *what a static description ("an upstream
 * credential held by airlock", "a GitHub token", ...), 0 when none is found,
 * or a negative code when the data could not be scanned (AL_ENOMEM, AL_ERROR);
 * then *what is "data the leak guard could not scan", so a caller that treats
 * any non-zero as a hit fails closed.
 *
 * It finds what gp_scan_buffer() (inspect.c) finds with the same secrets,
 * and also a PEM private-key header on a line longer than 127 bytes (a key
 * inside a JSON string, "-----BEGIN PRIVATE KEY-----\nMII..."), which
 * gp_scan_buffer() misses. */
int gp_scan_buffer2(const char **what, const void *data, size_t len, const gp_secretset *set);

/* A streaming scanner: feed an object's bytes in chunks of any size; a match
 * that spans chunks is found. Memory is fixed at init (about 3 times the
 * longest secret or pattern, plus the AES context), whatever is fed. Fields
 * are private. */
struct gp_scanner {
    const gp_secretset *set; /* not owned; outlives the scanner */
    void *aes;               /* EVP_CIPHER_CTX keyed for set, or NULL */
    unsigned char *buf;      /* tail[overlap] then seam[2 * overlap] */
    size_t overlap;          /* longest match - 1: bytes kept between chunks */
    size_t tail_len;
};

/* Prepares `s` for `set` (may be NULL: patterns only). 0, AL_ENOMEM or
 * AL_ERROR. Free with gp_scanner_free(). */
int gp_scanner_init(struct gp_scanner *s, const gp_secretset *set);

/* Scans the next len bytes of the current object. Returns 1 on a hit (in
 * these bytes or spanning the previous ones) with *what as gp_scan_buffer2(),
 * 0 otherwise, a negative code (and *what set) when it could not scan. The
 * bytes fed since the last reset produce a hit in some call if and only if
 * gp_scan_buffer2() finds one in their concatenation. */
int gp_scanner_feed(struct gp_scanner *s, const void *data, size_t len, const char **what);

/* Starts a new object: forgets the bytes fed so far. */
void gp_scanner_reset(struct gp_scanner *s);

/* Frees what init allocated; `s` may be zeroed or already freed. */
void gp_scanner_free(struct gp_scanner *s);

#endif
