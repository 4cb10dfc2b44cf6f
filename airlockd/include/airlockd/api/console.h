/* The web console (docs/console.md): static files under airlockd/console/
 * built into the program (CMake turns them into console_assets.c, see
 * airlockd/console/embed.cmake), served at /console/. */
#ifndef ALD_API_CONSOLE_H
#define ALD_API_CONSOLE_H

#include <stddef.h>

/* One embedded file: its name under /console/ ("index.html", "js/app.js"),
 * Content-Type, bytes and strong ETag (quoted hex of its SHA-256). */
struct ald_console_asset {
    const char *name;
    const char *type;
    const unsigned char *data;
    size_t len;
    const char *etag;
};

/* The files, sorted by name (generated). */
extern const struct ald_console_asset ald_console_assets[];
extern const size_t ald_console_n_assets;

/* The embedded file that the raw (not percent-decoded) URL path below
 * "/console/" names, `path` of `len` bytes (no NUL needed): "" names
 * index.html; anything else must be an asset's name byte for byte. NULL
 * for every other path, in particular any byte outside [A-Za-z0-9._/-]
 * (so no '%' escape, no NUL, no backslash), a component that is empty,
 * "." or "..", or a leading '/'. The result is static, never freed. */
const struct ald_console_asset *ald_console_find(const char *path, size_t len);

#endif
