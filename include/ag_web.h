/* ag_web.h - the dashboard's files (web/ and the uPlot build from web/node_modules), embedded in
 * the binary at build time by tools/embed_web.py and served by the API at / and /assets/. */
#ifndef AG_WEB_H
#define AG_WEB_H

#include <stddef.h>

typedef struct ag_web_asset {
    const char *path;         /* URL path: "/", "/assets/app.js", ... */
    const char *type;         /* Content-Type */
    const unsigned char *data;
    size_t len;
} ag_web_asset_t;

extern const ag_web_asset_t ag_web_assets[];
extern const size_t ag_web_nassets;

#endif
