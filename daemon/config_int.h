/* config_int.h - what the config file loader's files share (daemon/config.c: sections and
 * settings; daemon/config_lists.c: the models: and scalers: lists). Not a public header. */
#ifndef AG_CONFIG_INT_H
#define AG_CONFIG_INT_H

#include <stdbool.h>
#include <yaml.h>

#include "ag_config.h"

#define CFG_MAX_SECTIONS 16
#define CFG_MAX_SETTINGS 64

/* The loader reads libyaml's event stream twice rather than loading a document tree (see
 * config.c). */
typedef struct {
    const char *path;
    const char *buf;  /* the file, to turn a byte offset into line:column */
    size_t len;
    yaml_parser_t parser;
    yaml_event_t ev;  /* the current event, valid while have_ev */
    int have_ev;
    ag_config_t *cfg; /* the copy being filled in */
    ag_errmsg_t *e;
    size_t section_line[CFG_MAX_SECTIONS]; /* 1-based line where each section was seen, 0 if not */
    size_t setting_line[CFG_MAX_SETTINGS]; /* likewise for settings */
} loader_t;

/* Fails with "<path>:<line>:<col>: <message>" for the position `m` (0-based in libyaml). */
int fail_at(const loader_t *ld, yaml_mark_t m, const char *msg);
/* Moves to the next event (ld->ev), releasing the current one. */
int next_event(loader_t *ld);
/* "a mapping (key: value pairs)", "a list", "an alias" or "a single value". */
const char *event_kind(const yaml_event_t *ev);
int fail_alias(const loader_t *ld);
/* YAML's null: an untagged plain scalar that is empty, "~" or "null". */
int is_null(const yaml_event_t *ev);
/* The current event as a mapping key: a C string of at most `cap - 1` bytes. */
int key_name(const loader_t *ld, char *out, size_t cap);

/* At the value of "models:" / "scalers:" (config_lists.c): replaces the list in ld->cfg. */
int load_models(loader_t *ld);
int load_scalers(loader_t *ld);
int load_alerts(loader_t *ld);
void cfg_models_free(ag_model_def_t *m, size_t n);

#endif
