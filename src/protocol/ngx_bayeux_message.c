
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"


/*
 * The kinds of JSON value, as bits: a field accepts a set of them.  A
 * null where a field does not accept one is as if the field were absent.
 */

#define NGX_BAYEUX_JSON_NULL     0x01
#define NGX_BAYEUX_JSON_BOOL     0x02
#define NGX_BAYEUX_JSON_NUMBER   0x04
#define NGX_BAYEUX_JSON_STRING   0x08
#define NGX_BAYEUX_JSON_MAP      0x10
#define NGX_BAYEUX_JSON_ARRAY    0x20
#define NGX_BAYEUX_JSON_ANY      0x3f


/*
 * How a field's value is kept in ngx_bayeux_message_t:
 *   STRING   decoded, in the ngx_str_t at "offset" (strings only);
 *   JSON     as compact JSON text, in the ngx_str_t at "offset";
 *   STRINGS  the string, or the strings of the array (its elements must
 *            be strings), decoded, in the ngx_array_t * at "strings".
 * An object's members listed in "members" are decoded too.
 */

#define NGX_BAYEUX_KEEP_STRING   0x01
#define NGX_BAYEUX_KEEP_JSON     0x02
#define NGX_BAYEUX_KEEP_STRINGS  0x04


#define ngx_bayeux_msg_offset(member)  offsetof(ngx_bayeux_message_t, member)
#define ngx_bayeux_ext_offset(member)                                         \
    offsetof(ngx_bayeux_message_t, ext_values.member)


/*
 * A scalar member of a field's object, or of an object in it ("sub"),
 * that is decoded.  A value of another type, or one that does not
 * decode (NGX_DECLINED), leaves the message as if the member were
 * absent; NGX_ERROR fails the batch (no memory).  A boolean reaches the
 * decoder as the text "true" or "false".
 */

typedef ngx_int_t (*ngx_bayeux_decode_pt)(ngx_pool_t *pool, void *dst,
    const u_char *text, size_t len);

struct ngx_bayeux_member_s {
    ngx_str_t                  key;
    ngx_str_t                  sub;         /* empty: key's value itself */
    ngx_uint_t                 types;       /* NGX_BAYEUX_JSON_* */
    ngx_bayeux_decode_pt       decode;
    size_t                     offset;      /* in ngx_bayeux_message_t */
};


struct ngx_bayeux_field_s {
    ngx_str_t                  key;
    ngx_uint_t                 types;       /* NGX_BAYEUX_JSON_* */
    ngx_uint_t                 keep;        /* NGX_BAYEUX_KEEP_* */
    size_t                     offset;
    size_t                     strings;
    ngx_bayeux_member_t       *members;
    char                      *wrong_type;  /* the 400 reply's text */
};


/* what ngx_bayeux_parser_event() makes of a JSON value */

typedef enum {
    ngx_bayeux_event_error = 0,     /* refused: p->error says why */
    ngx_bayeux_event_batch,         /* the array of messages opens */
    ngx_bayeux_event_message,       /* a message object opens */
    ngx_bayeux_event_absent,        /* a field's null: nothing to keep */
    ngx_bayeux_event_decode,        /* a KEEP_STRING field's string */
    ngx_bayeux_event_capture        /* a field's value, or a part of it */
} ngx_bayeux_event_e;


/* a lead byte of UTF-8 (RFC 3629) and the range of the byte after it */

typedef struct {
    u_char                     first;
    u_char                     last;
    u_char                     need;        /* continuation bytes */
    u_char                     min;         /* of the next byte */
    u_char                     max;
} ngx_bayeux_utf8_lead_t;


/* where ngx_bayeux_parser_check() is in the text */

enum {
    ngx_bayeux_text_plain = 0,
    ngx_bayeux_text_escape,         /* after a backslash */
    ngx_bayeux_text_hex,            /* in the digits of \uXXXX */
    ngx_bayeux_text_pair,           /* after a high surrogate: "\" due */
    ngx_bayeux_text_pair_u          /* then "u" */
};


static int ngx_bayeux_parse_null(void *ctx);
static int ngx_bayeux_parse_boolean(void *ctx, int value);
static int ngx_bayeux_parse_number(void *ctx, const char *s, size_t len);
static int ngx_bayeux_parse_string(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bayeux_parse_start_map(void *ctx);
static int ngx_bayeux_parse_map_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bayeux_parse_end_map(void *ctx);
static int ngx_bayeux_parse_start_array(void *ctx);
static int ngx_bayeux_parse_end_array(void *ctx);

static ngx_bayeux_event_e ngx_bayeux_parser_event(ngx_bayeux_parser_t *p,
    ngx_uint_t type);
static ngx_bayeux_event_e ngx_bayeux_parser_field(ngx_bayeux_parser_t *p,
    ngx_uint_t type);
static int ngx_bayeux_parser_message(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_open(ngx_bayeux_parser_t *p);
static void ngx_bayeux_parser_close(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_capture_start(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_capture_end(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_scalar(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_gen(ngx_bayeux_parser_t *p,
    yajl_gen_status status);
static void ngx_bayeux_parser_member_key(ngx_bayeux_parser_t *p,
    ngx_str_t *key);
static int ngx_bayeux_parser_member(ngx_bayeux_parser_t *p,
    ngx_uint_t type, const u_char *text, size_t len);
static ngx_uint_t ngx_bayeux_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_bayeux_decode_natural(ngx_pool_t *pool, void *dst,
    const u_char *text, size_t len);
static ngx_int_t ngx_bayeux_decode_integer(ngx_pool_t *pool, void *dst,
    const u_char *text, size_t len);
static ngx_int_t ngx_bayeux_decode_boolean(ngx_pool_t *pool, void *dst,
    const u_char *text, size_t len);
static ngx_int_t ngx_bayeux_decode_string(ngx_pool_t *pool, void *dst,
    const u_char *text, size_t len);
static int ngx_bayeux_parser_fail(ngx_bayeux_parser_t *p, char *reason);
static ngx_int_t ngx_bayeux_parser_check(ngx_bayeux_parser_t *p,
    u_char *data, size_t len);
static void ngx_bayeux_parser_text_error(ngx_bayeux_parser_t *p,
    char *fmt, size_t offset);
static int ngx_bayeux_parser_copy(ngx_bayeux_parser_t *p, ngx_str_t *dst,
    const unsigned char *s, size_t len);
static void ngx_bayeux_parser_cleanup(ngx_bayeux_parser_t *p);
static void ngx_bayeux_parser_yajl_error(ngx_bayeux_parser_t *p,
    size_t offset);

static void *ngx_bayeux_arena_malloc(void *ctx, size_t size);
static void *ngx_bayeux_arena_realloc(void *ctx, void *ptr, size_t size);
static void ngx_bayeux_arena_free(void *ctx, void *ptr);
static void *ngx_bayeux_pool_malloc(void *ctx, size_t size);
static void *ngx_bayeux_pool_realloc(void *ctx, void *ptr, size_t size);
static void ngx_bayeux_pool_free(void *ctx, void *ptr);


/*
 * yajl allocates from a buffer of the worker while a batch is parsed.
 * A batch is parsed in one go (created, fed, finished), so one parser at
 * a time uses it; what yajl needs (its lexer and generator buffers) then
 * costs no malloc() and leaves no hole in the heap between the
 * allocations that outlive the request, such as sessions.  Another
 * parser alive at the same time, and what does not fit, use malloc().
 * Each block starts with its size, for realloc().
 */

#define NGX_BAYEUX_ARENA_SIZE    32768
#define NGX_BAYEUX_ARENA_HEADER  16

static uint64_t              ngx_bayeux_arena[NGX_BAYEUX_ARENA_SIZE / 8];
static size_t                ngx_bayeux_arena_used;
static ngx_bayeux_parser_t  *ngx_bayeux_arena_owner;

static yajl_alloc_funcs      ngx_bayeux_arena_funcs = {
    ngx_bayeux_arena_malloc,
    ngx_bayeux_arena_realloc,
    ngx_bayeux_arena_free,
    NULL
};


static yajl_callbacks  ngx_bayeux_parse_callbacks = {
    ngx_bayeux_parse_null,
    ngx_bayeux_parse_boolean,
    NULL,
    NULL,
    ngx_bayeux_parse_number,
    ngx_bayeux_parse_string,
    ngx_bayeux_parse_start_map,
    ngx_bayeux_parse_map_key,
    ngx_bayeux_parse_end_map,
    ngx_bayeux_parse_start_array,
    ngx_bayeux_parse_end_array
};


static ngx_bayeux_utf8_lead_t  ngx_bayeux_utf8_leads[] = {
    { 0xc2, 0xdf, 1, 0x80, 0xbf },
    { 0xe0, 0xe0, 2, 0xa0, 0xbf },      /* not overlong */
    { 0xe1, 0xec, 2, 0x80, 0xbf },
    { 0xed, 0xed, 2, 0x80, 0x9f },      /* not a surrogate */
    { 0xee, 0xef, 2, 0x80, 0xbf },
    { 0xf0, 0xf0, 3, 0x90, 0xbf },      /* not overlong */
    { 0xf1, 0xf3, 3, 0x80, 0xbf },
    { 0xf4, 0xf4, 3, 0x80, 0x8f },      /* up to U+10FFFF */
    { 0, 0, 0, 0, 0 }
};


static ngx_bayeux_member_t  ngx_bayeux_advice_members[] = {

    { ngx_string("timeout"), ngx_null_string, NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_natural, ngx_bayeux_msg_offset(advice_timeout) },

    { ngx_string("interval"), ngx_null_string, NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_natural, ngx_bayeux_msg_offset(advice_interval) },

    { ngx_null_string, ngx_null_string, 0, NULL, 0 }
};


/* for the ack and timesync extensions: see ngx_bayeux_ext_t */

static ngx_bayeux_member_t  ngx_bayeux_ext_members[] = {

    { ngx_string("ack"), ngx_null_string, NGX_BAYEUX_JSON_BOOL,
      ngx_bayeux_decode_boolean, ngx_bayeux_ext_offset(ack_enabled) },

    { ngx_string("ack"), ngx_null_string, NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_integer, ngx_bayeux_ext_offset(ack_batch) },

    { ngx_string("ack"), ngx_string("enabled"), NGX_BAYEUX_JSON_BOOL,
      ngx_bayeux_decode_boolean, ngx_bayeux_ext_offset(ack_enabled) },

    { ngx_string("ack"), ngx_string("batch"), NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_integer, ngx_bayeux_ext_offset(ack_batch) },

    { ngx_string("timesync"), ngx_string("tc"), NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_integer, ngx_bayeux_ext_offset(timesync_tc) },

    { ngx_string("timesync"), ngx_string("l"), NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_integer, ngx_bayeux_ext_offset(timesync_l) },

    { ngx_string("timesync"), ngx_string("o"), NGX_BAYEUX_JSON_NUMBER,
      ngx_bayeux_decode_integer, ngx_bayeux_ext_offset(timesync_o) },

    { ngx_string("token"), ngx_null_string, NGX_BAYEUX_JSON_STRING,
      ngx_bayeux_decode_string, ngx_bayeux_ext_offset(token) },

    { ngx_null_string, ngx_null_string, 0, NULL, 0 }
};


/*
 * The message fields the parser knows.  A field is one row here and its
 * member(s) in ngx_bayeux_message_t.
 */

static ngx_bayeux_field_t  ngx_bayeux_fields[] = {

    { ngx_string("channel"),
      NGX_BAYEUX_JSON_STRING,
      NGX_BAYEUX_KEEP_STRING, ngx_bayeux_msg_offset(channel), 0, NULL,
      "\"channel\" must be a string" },

    { ngx_string("clientId"),
      NGX_BAYEUX_JSON_STRING,
      NGX_BAYEUX_KEEP_STRING, ngx_bayeux_msg_offset(client_id), 0, NULL,
      "\"clientId\" must be a string" },

    /* the publisher location's: every session of that user */
    { ngx_string("user"),
      NGX_BAYEUX_JSON_STRING,
      NGX_BAYEUX_KEEP_STRING, ngx_bayeux_msg_offset(user), 0, NULL,
      "\"user\" must be a string" },

    { ngx_string("connectionType"),
      NGX_BAYEUX_JSON_STRING,
      NGX_BAYEUX_KEEP_STRING, ngx_bayeux_msg_offset(connection_type), 0,
      NULL,
      "\"connectionType\" must be a string" },

    { ngx_string("version"),
      NGX_BAYEUX_JSON_STRING,
      NGX_BAYEUX_KEEP_STRING, ngx_bayeux_msg_offset(version), 0, NULL,
      "\"version\" must be a string" },

    { ngx_string("minimumVersion"),
      NGX_BAYEUX_JSON_STRING,
      NGX_BAYEUX_KEEP_STRING, ngx_bayeux_msg_offset(minimum_version), 0,
      NULL,
      "\"minimumVersion\" must be a string" },

    { ngx_string("id"),
      NGX_BAYEUX_JSON_STRING|NGX_BAYEUX_JSON_NUMBER,
      NGX_BAYEUX_KEEP_JSON, ngx_bayeux_msg_offset(id), 0, NULL,
      "\"id\" must be a string or a number" },

    { ngx_string("data"),
      NGX_BAYEUX_JSON_ANY,
      NGX_BAYEUX_KEEP_JSON, ngx_bayeux_msg_offset(data), 0, NULL,
      NULL },

    { ngx_string("ext"),
      NGX_BAYEUX_JSON_MAP,
      NGX_BAYEUX_KEEP_JSON, ngx_bayeux_msg_offset(ext), 0,
      ngx_bayeux_ext_members,
      "\"ext\" must be an object" },

    { ngx_string("advice"),
      NGX_BAYEUX_JSON_MAP,
      0, 0, 0, ngx_bayeux_advice_members,
      "\"advice\" must be an object" },

    { ngx_string("subscription"),
      NGX_BAYEUX_JSON_STRING|NGX_BAYEUX_JSON_ARRAY,
      NGX_BAYEUX_KEEP_JSON|NGX_BAYEUX_KEEP_STRINGS,
      ngx_bayeux_msg_offset(subscription),
      ngx_bayeux_msg_offset(subscriptions), NULL,
      "\"subscription\" must be a string or an array of strings" },

    { ngx_string("supportedConnectionTypes"),
      NGX_BAYEUX_JSON_ARRAY,
      NGX_BAYEUX_KEEP_STRINGS, 0, ngx_bayeux_msg_offset(connection_types),
      NULL,
      "\"supportedConnectionTypes\" must be an array of strings" },

    { ngx_null_string, 0, 0, 0, 0, NULL, NULL }
};


/* any other field: checked as JSON, not kept */

static ngx_bayeux_field_t  ngx_bayeux_field_unknown = {
    ngx_null_string, NGX_BAYEUX_JSON_ANY, 0, 0, 0, NULL, NULL
};


/*
 * The parser lives where its caller puts it (the stack: a batch is
 * parsed in one go); what it produces is in the pool.  Once
 * ngx_bayeux_parser_feed() failed or ngx_bayeux_parser_finish() was
 * called, yajl is freed.
 */

ngx_int_t
ngx_bayeux_parser_init(ngx_bayeux_parser_t *p, ngx_pool_t *pool,
    ngx_uint_t max_messages)
{
    ngx_memzero(p, sizeof(ngx_bayeux_parser_t));

    p->pool = pool;
    p->max_messages = max_messages;

    p->messages = ngx_array_create(pool, 1, sizeof(ngx_bayeux_message_t));
    if (p->messages == NULL) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_arena_owner == NULL) {
        ngx_bayeux_arena_owner = p;
        ngx_bayeux_arena_used = 0;
        p->arena = 1;
    }

    /* yajl keeps a copy of the functions */
    ngx_bayeux_arena_funcs.ctx = p;

    p->handle = yajl_alloc(&ngx_bayeux_parse_callbacks,
                           &ngx_bayeux_arena_funcs, p);
    if (p->handle == NULL) {
        ngx_bayeux_parser_cleanup(p);
        return NGX_ERROR;
    }

    p->gen = yajl_gen_alloc(&ngx_bayeux_arena_funcs);
    if (p->gen == NULL) {
        ngx_bayeux_parser_cleanup(p);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_bayeux_parser_cleanup(ngx_bayeux_parser_t *p)
{
    if (p->handle) {
        yajl_free(p->handle);
        p->handle = NULL;
    }

    if (p->gen) {
        yajl_gen_free(p->gen);
        p->gen = NULL;
    }

    if (p->arena) {
        p->arena = 0;
        ngx_bayeux_arena_owner = NULL;
    }
}


static void *
ngx_bayeux_arena_malloc(void *ctx, size_t size)
{
    ngx_bayeux_parser_t *p = ctx;

    u_char  *m;
    size_t   need;

    need = NGX_BAYEUX_ARENA_HEADER + ngx_align(size, NGX_BAYEUX_ARENA_HEADER);

    if (!p->arena || ngx_bayeux_arena_used + need > NGX_BAYEUX_ARENA_SIZE) {
        return ngx_alloc(size, ngx_cycle->log);
    }

    m = (u_char *) ngx_bayeux_arena + ngx_bayeux_arena_used;
    *(size_t *) m = size;

    ngx_bayeux_arena_used += need;

    return m + NGX_BAYEUX_ARENA_HEADER;
}


static ngx_inline ngx_uint_t
ngx_bayeux_arena_has(void *ptr)
{
    return (u_char *) ptr >= (u_char *) ngx_bayeux_arena
           && (u_char *) ptr < (u_char *) ngx_bayeux_arena
                               + NGX_BAYEUX_ARENA_SIZE;
}


static void *
ngx_bayeux_arena_realloc(void *ctx, void *ptr, size_t size)
{
    u_char  *m, *end, *n;
    size_t   old;

    if (ptr == NULL) {
        return ngx_bayeux_arena_malloc(ctx, size);
    }

    if (!ngx_bayeux_arena_has(ptr)) {
        return realloc(ptr, size);
    }

    m = (u_char *) ptr - NGX_BAYEUX_ARENA_HEADER;
    old = *(size_t *) m;
    end = (u_char *) ngx_bayeux_arena + ngx_bayeux_arena_used;

    /* the last block grows where it is */

    if ((u_char *) ptr + ngx_align(old, NGX_BAYEUX_ARENA_HEADER) == end
        && (size_t) ((u_char *) ptr - (u_char *) ngx_bayeux_arena)
           + ngx_align(size, NGX_BAYEUX_ARENA_HEADER)
           <= NGX_BAYEUX_ARENA_SIZE)
    {
        *(size_t *) m = size;
        ngx_bayeux_arena_used = (u_char *) ptr - (u_char *) ngx_bayeux_arena
                                + ngx_align(size, NGX_BAYEUX_ARENA_HEADER);
        return ptr;
    }

    n = ngx_bayeux_arena_malloc(ctx, size);
    if (n == NULL) {
        return NULL;
    }

    ngx_memcpy(n, ptr, ngx_min(old, size));

    return n;
}


static void
ngx_bayeux_arena_free(void *ctx, void *ptr)
{
    u_char  *m;
    size_t   size;

    if (ptr == NULL) {
        return;
    }

    if (!ngx_bayeux_arena_has(ptr)) {
        ngx_free(ptr);
        return;
    }

    /* the last block is given back; the others with the whole buffer */

    m = (u_char *) ptr - NGX_BAYEUX_ARENA_HEADER;
    size = *(size_t *) m;

    if ((u_char *) ptr + ngx_align(size, NGX_BAYEUX_ARENA_HEADER)
        == (u_char *) ngx_bayeux_arena + ngx_bayeux_arena_used)
    {
        ngx_bayeux_arena_used = m - (u_char *) ngx_bayeux_arena;
    }
}


/* each block starts with its size, for realloc() */

void
ngx_bayeux_yajl_pool_funcs(yajl_alloc_funcs *af, ngx_pool_t *pool)
{
    af->malloc = ngx_bayeux_pool_malloc;
    af->realloc = ngx_bayeux_pool_realloc;
    af->free = ngx_bayeux_pool_free;
    af->ctx = pool;
}


static void *
ngx_bayeux_pool_malloc(void *ctx, size_t size)
{
    u_char  *m;

    m = ngx_palloc(ctx, NGX_BAYEUX_ARENA_HEADER + size);
    if (m == NULL) {
        return NULL;
    }

    *(size_t *) m = size;

    return m + NGX_BAYEUX_ARENA_HEADER;
}


static void *
ngx_bayeux_pool_realloc(void *ctx, void *ptr, size_t size)
{
    u_char  *n;
    size_t   old;

    if (ptr == NULL) {
        return ngx_bayeux_pool_malloc(ctx, size);
    }

    old = *(size_t *) ((u_char *) ptr - NGX_BAYEUX_ARENA_HEADER);

    if (size <= old) {
        return ptr;
    }

    n = ngx_bayeux_pool_malloc(ctx, size);
    if (n == NULL) {
        return NULL;
    }

    ngx_memcpy(n, ptr, old);

    return n;
}


/* given back with the pool */

static void
ngx_bayeux_pool_free(void *ctx, void *ptr)
{
}


ngx_int_t
ngx_bayeux_parser_feed(ngx_bayeux_parser_t *p, u_char *data, size_t len)
{
    yajl_status  status;

    if (p->error.len) {
        return NGX_ERROR;
    }

    status = yajl_parse(p->handle, data, len);

    if (status != yajl_status_ok) {
        if (p->error.len == 0) {
            ngx_bayeux_parser_yajl_error(p,
                                       p->bytes
                                       + yajl_get_bytes_consumed(p->handle));
        }

        /* the error is in the pool: yajl is done with */
        ngx_bayeux_parser_cleanup(p);

        return NGX_ERROR;
    }

    if (ngx_bayeux_parser_check(p, data, len) != NGX_OK) {
        ngx_bayeux_parser_cleanup(p);
        return NGX_ERROR;
    }

    p->bytes += len;

    return NGX_OK;
}


/*
 * What yajl accepted must also be Unicode: yajl checks only the shape of
 * UTF-8 sequences, and decodes a surrogate escape without its pair to
 * bytes that are not UTF-8 (or to "?"), which a websocket client fails
 * its connection on.  A backslash is in a string in any JSON that yajl
 * accepts, so escapes are found without following the strings.
 * Positions are counted from 1, as yajl's are.
 */

static ngx_int_t
ngx_bayeux_parser_check(ngx_bayeux_parser_t *p, u_char *data, size_t len)
{
    u_char                  c, *pos, *last;
    ngx_int_t               digit;
    ngx_bayeux_utf8_lead_t  *lead;

    last = data + len;

    for (pos = data; pos < last; pos++) {
        c = *pos;

        if (p->utf8_need) {
            if (c < p->utf8_min || c > p->utf8_max) {
                goto bad_utf8;
            }

            p->utf8_min = 0x80;
            p->utf8_max = 0xbf;
            p->utf8_need--;
            continue;
        }

        switch (p->text_state) {

        case ngx_bayeux_text_plain:

            if (c == '\\') {
                p->text_state = ngx_bayeux_text_escape;
                p->escape_at = p->bytes + (pos - data) + 1;
                continue;
            }

            if (c < 0x80) {
                continue;
            }

            for (lead = ngx_bayeux_utf8_leads; lead->need; lead++) {
                if (c >= lead->first && c <= lead->last) {
                    break;
                }
            }

            if (lead->need == 0) {
                goto bad_utf8;
            }

            p->utf8_need = lead->need;
            p->utf8_min = lead->min;
            p->utf8_max = lead->max;
            continue;

        case ngx_bayeux_text_escape:
        case ngx_bayeux_text_pair_u:

            if (c == 'u') {
                /* after a high surrogate, "code" keeps it above 0xffff */
                p->code = (p->text_state == ngx_bayeux_text_pair_u)
                          ? p->code << 16 : 0;
                p->text_state = ngx_bayeux_text_hex;
                p->digits = 0;
                continue;
            }

            if (p->text_state == ngx_bayeux_text_pair_u) {
                goto lone;
            }

            p->text_state = ngx_bayeux_text_plain;
            continue;

        case ngx_bayeux_text_pair:

            if (c != '\\') {
                goto lone;
            }

            p->text_state = ngx_bayeux_text_pair_u;
            continue;

        default: /* ngx_bayeux_text_hex */

            digit = ngx_hextoi(pos, 1);
            if (digit == NGX_ERROR) {
                /* yajl's lexer refuses it */
                p->text_state = ngx_bayeux_text_plain;
                continue;
            }

            p->code = (p->code << 4) | digit;

            if (++p->digits < 4) {
                continue;
            }

            p->text_state = ngx_bayeux_text_plain;

            switch (p->code & 0xfc00) {

            case 0xd800:
                if (p->code > 0xffff) {
                    /* a high surrogate after a high surrogate */
                    goto lone;
                }

                p->text_state = ngx_bayeux_text_pair;
                break;

            case 0xdc00:
                if (p->code <= 0xffff) {
                    goto lone;
                }

                break;

            default:
                if (p->code > 0xffff) {
                    goto lone;
                }
            }
        }
    }

    return NGX_OK;

lone:

    ngx_bayeux_parser_text_error(p, "invalid unicode escape at byte %uz: "
                                 "lone surrogate", p->escape_at);
    return NGX_ERROR;

bad_utf8:

    ngx_bayeux_parser_text_error(p, "malformed JSON at byte %uz: "
                                 "invalid bytes in UTF8 string",
                                 p->bytes + (pos - data) + 1);
    return NGX_ERROR;
}


ngx_int_t
ngx_bayeux_parser_finish(ngx_bayeux_parser_t *p)
{
    ngx_uint_t             i;
    yajl_status            status;
    ngx_bayeux_message_t  *m;

    if (p->error.len) {
        ngx_bayeux_parser_cleanup(p);
        return NGX_ERROR;
    }

    if (p->bytes == 0) {
        ngx_str_set(&p->error, "empty body");
        ngx_bayeux_parser_cleanup(p);
        return NGX_ERROR;
    }

    status = yajl_complete_parse(p->handle);

    if (status != yajl_status_ok && p->error.len == 0) {
        ngx_bayeux_parser_yajl_error(p, p->bytes);
    }

    /*
     * every value, and the error, is in the pool by now: yajl's buffers
     * need not live as long as a held connect, and the next
     * parser may use the worker's buffer
     */

    ngx_bayeux_parser_cleanup(p);

    if (status != yajl_status_ok) {
        return NGX_ERROR;
    }

    if (p->messages->nelts == 0) {
        ngx_str_set(&p->error, "no messages");
        return NGX_ERROR;
    }

    /*
     * A handshake comes alone, as CometD requires: one request cannot
     * make sessions by the thousand
     */

    if (p->messages->nelts > 1) {
        m = p->messages->elts;

        for (i = 0; i < p->messages->nelts; i++) {
            if (m[i].channel.len == sizeof("/meta/handshake") - 1
                && ngx_strncmp(m[i].channel.data, "/meta/handshake",
                               sizeof("/meta/handshake") - 1)
                   == 0)
            {
                ngx_str_set(&p->error,
                            "handshake in a batch of several messages");
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* a reason with a position, "fmt" being one of ngx_bayeux_parser_check()'s */

static void
ngx_bayeux_parser_text_error(ngx_bayeux_parser_t *p, char *fmt,
    size_t offset)
{
    u_char  *msg;

    msg = ngx_pnalloc(p->pool, ngx_strlen(fmt) + NGX_SIZE_T_LEN);
    if (msg == NULL) {
        ngx_str_set(&p->error, "malformed JSON");
        return;
    }

    p->error.data = msg;
    p->error.len = ngx_sprintf(msg, fmt, offset) - msg;
}


/* "malformed JSON at byte N: <what yajl says>" */

static void
ngx_bayeux_parser_yajl_error(ngx_bayeux_parser_t *p, size_t offset)
{
    size_t          len;
    u_char         *msg, *s, *e;
    unsigned char  *text;

    text = yajl_get_error(p->handle, 0, NULL, 0);

    s = (u_char *) "";
    len = 0;

    if (text) {
        /* "parse error: ..." or "lexical error: ...", up to the newline */

        s = (u_char *) ngx_strstr(text, ": ");
        s = s ? s + 2 : (u_char *) text;

        e = s;
        while (*e && *e != '\n' && *e != '.') {
            e++;
        }

        len = e - s;
    }

    msg = ngx_pnalloc(p->pool, sizeof("malformed JSON at byte : ")
                               + NGX_SIZE_T_LEN + len);

    if (msg) {
        p->error.data = msg;
        p->error.len = (len ? ngx_sprintf(msg, "malformed JSON at byte %uz: "
                                          "%*s", offset, len, s)
                            : ngx_sprintf(msg, "malformed JSON at byte %uz",
                                          offset))
                       - msg;

    } else {
        ngx_str_set(&p->error, "malformed JSON");
    }

    if (text) {
        yajl_free_error(p->handle, text);
    }
}


ngx_array_t *
ngx_bayeux_parser_messages(ngx_bayeux_parser_t *p)
{
    return p->messages;
}


ngx_str_t *
ngx_bayeux_parser_error(ngx_bayeux_parser_t *p)
{
    return &p->error;
}


static int
ngx_bayeux_parser_fail(ngx_bayeux_parser_t *p, char *reason)
{
    p->error.data = (u_char *) reason;
    p->error.len = ngx_strlen(reason);

    return 0;
}


static int
ngx_bayeux_parser_copy(ngx_bayeux_parser_t *p, ngx_str_t *dst,
    const unsigned char *s, size_t len)
{
    dst->data = ngx_pnalloc(p->pool, len ? len : 1);
    if (dst->data == NULL) {
        return ngx_bayeux_parser_fail(p, "out of memory");
    }

    ngx_memcpy(dst->data, s, len);
    dst->len = len;

    return 1;
}


static int
ngx_bayeux_parser_message(ngx_bayeux_parser_t *p)
{
    ngx_bayeux_message_t  *msg;

    if (p->messages->nelts >= p->max_messages) {
        return ngx_bayeux_parser_fail(p, "too many messages in the batch");
    }

    msg = ngx_array_push(p->messages);
    if (msg == NULL) {
        return ngx_bayeux_parser_fail(p, "out of memory");
    }

    ngx_memzero(msg, sizeof(ngx_bayeux_message_t));

    msg->advice_timeout = -1;
    msg->advice_interval = -1;

    p->msg = msg;
    p->field = &ngx_bayeux_field_unknown;

    return 1;
}


static int
ngx_bayeux_parser_open(ngx_bayeux_parser_t *p)
{
    if (++p->depth > NGX_BAYEUX_MAX_JSON_DEPTH) {
        return ngx_bayeux_parser_fail(p, "JSON nested too deeply");
    }

    return 1;
}


static void
ngx_bayeux_parser_close(ngx_bayeux_parser_t *p)
{
    p->depth--;
}


static int
ngx_bayeux_parser_capture_start(ngx_bayeux_parser_t *p)
{
    ngx_array_t         *strings;
    ngx_bayeux_field_t  *f;

    f = p->field;

    yajl_gen_clear(p->gen);
    yajl_gen_reset(p->gen, NULL);

    p->capturing = 1;
    p->capture_depth = p->depth;
    p->member = NULL;
    p->submember = NULL;

    if (f->keep & NGX_BAYEUX_KEEP_STRINGS) {
        strings = ngx_array_create(p->pool, 4, sizeof(ngx_str_t));
        if (strings == NULL) {
            return ngx_bayeux_parser_fail(p, "out of memory");
        }

        *(ngx_array_t **) ((u_char *) p->msg + f->strings) = strings;
    }

    return 1;
}


static int
ngx_bayeux_parser_capture_end(ngx_bayeux_parser_t *p)
{
    size_t                len;
    ngx_str_t            *dst;
    ngx_bayeux_field_t   *f;
    const unsigned char  *buf;

    f = p->field;

    p->capturing = 0;

    if (!(f->keep & NGX_BAYEUX_KEEP_JSON)) {
        return 1;
    }

    if (yajl_gen_get_buf(p->gen, &buf, &len) != yajl_gen_status_ok) {
        return ngx_bayeux_parser_fail(p, "out of memory");
    }

    dst = (ngx_str_t *) ((u_char *) p->msg + f->offset);

    return ngx_bayeux_parser_copy(p, dst, buf, len);
}


/* a scalar that is a whole field value ends the capture */

static int
ngx_bayeux_parser_scalar(ngx_bayeux_parser_t *p)
{
    if (p->capturing && p->depth == p->capture_depth) {
        return ngx_bayeux_parser_capture_end(p);
    }

    return 1;
}


static int
ngx_bayeux_parser_gen(ngx_bayeux_parser_t *p, yajl_gen_status status)
{
    if (status != yajl_gen_status_ok) {
        return ngx_bayeux_parser_fail(p, "cannot re-encode JSON");
    }

    return 1;
}


/* a value that starts at message level: checked against the field's row */

static ngx_bayeux_event_e
ngx_bayeux_parser_field(ngx_bayeux_parser_t *p, ngx_uint_t type)
{
    ngx_bayeux_field_t  *f;

    f = p->field;

    if (!(f->types & type)) {

        if (type == NGX_BAYEUX_JSON_NULL) {
            return ngx_bayeux_event_absent;
        }

        (void) ngx_bayeux_parser_fail(p, f->wrong_type);
        return ngx_bayeux_event_error;
    }

    if (f->keep & NGX_BAYEUX_KEEP_STRING) {
        /* decoded by the string handler, not captured */
        return ngx_bayeux_event_decode;
    }

    if (!ngx_bayeux_parser_capture_start(p)) {
        return ngx_bayeux_event_error;
    }

    return ngx_bayeux_event_capture;
}


/* every value event goes through here first */

static ngx_bayeux_event_e
ngx_bayeux_parser_event(ngx_bayeux_parser_t *p, ngx_uint_t type)
{
    if (p->capturing) {

        if ((p->field->keep & NGX_BAYEUX_KEEP_STRINGS)
            && p->depth == p->capture_depth + 1
            && type != NGX_BAYEUX_JSON_STRING)
        {
            (void) ngx_bayeux_parser_fail(p, p->field->wrong_type);
            return ngx_bayeux_event_error;
        }

        return ngx_bayeux_event_capture;
    }

    if (!p->started) {
        p->started = 1;

        if (type == NGX_BAYEUX_JSON_ARRAY) {
            p->batch = 1;
            return ngx_bayeux_event_batch;
        }

        if (type == NGX_BAYEUX_JSON_MAP) {
            return ngx_bayeux_event_message;
        }

        (void) ngx_bayeux_parser_fail(p,
                            "body is not a message or an array of messages");
        return ngx_bayeux_event_error;
    }

    if (p->msg == NULL) {
        if (p->batch && p->depth == 1 && type == NGX_BAYEUX_JSON_MAP) {
            return ngx_bayeux_event_message;
        }

        (void) ngx_bayeux_parser_fail(p,
                                  "batch element is not a message object");
        return ngx_bayeux_event_error;
    }

    return ngx_bayeux_parser_field(p, type);
}


static ngx_uint_t
ngx_bayeux_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_strncmp(a->data, b->data, a->len) == 0);
}


/*
 * A key inside a captured object with members to decode: a key of the
 * object itself chooses the rows of that member, a key of an object in
 * it the rows of that "sub" member.
 */

static void
ngx_bayeux_parser_member_key(ngx_bayeux_parser_t *p, ngx_str_t *key)
{
    ngx_bayeux_member_t  *m;

    if (p->field->members == NULL) {
        return;
    }

    if (p->depth == p->capture_depth + 1) {
        p->member = NULL;
        p->submember = NULL;

        for (m = p->field->members; m->key.len; m++) {
            if (ngx_bayeux_str_eq(&m->key, key)) {
                p->member = m;
                return;
            }
        }

        return;
    }

    if (p->depth == p->capture_depth + 2 && p->member) {
        p->submember = NULL;

        for (m = p->member; m->key.len; m++) {
            if (m->sub.len
                && ngx_bayeux_str_eq(&m->key, &p->member->key)
                && ngx_bayeux_str_eq(&m->sub, key))
            {
                p->submember = m;
                return;
            }
        }
    }
}


/* a scalar inside a captured object: decoded if a row wants it */

static int
ngx_bayeux_parser_member(ngx_bayeux_parser_t *p, ngx_uint_t type,
    const u_char *text, size_t len)
{
    ngx_int_t             rc;
    ngx_str_t             none, *sub;
    ngx_bayeux_member_t  *first, *m;

    ngx_str_null(&none);

    if (p->depth == p->capture_depth + 1 && p->member) {
        first = p->member;
        sub = &none;

    } else if (p->depth == p->capture_depth + 2 && p->submember) {
        first = p->submember;
        sub = &first->sub;

    } else {
        return 1;
    }

    for (m = first; m->key.len; m++) {
        if ((m->types & type)
            && ngx_bayeux_str_eq(&m->key, &first->key)
            && ngx_bayeux_str_eq(&m->sub, sub))
        {
            rc = m->decode(p->pool, (u_char *) p->msg + m->offset, text,
                           len);

            if (rc == NGX_ERROR) {
                return ngx_bayeux_parser_fail(p, "out of memory");
            }

            if (rc == NGX_OK) {
                ngx_log_debug6(NGX_LOG_DEBUG_HTTP, p->pool->log, 0,
                               "bayeux message: %V.%V%s%s is %*s",
                               &p->field->key, &m->key,
                               m->sub.len ? "." : "",
                               m->sub.len ? (char *) m->sub.data : "",
                               len, text);
            }

            return 1;
        }
    }

    return 1;
}


/* an integer from 0, into an ngx_int_t */

static ngx_int_t
ngx_bayeux_decode_natural(ngx_pool_t *pool, void *dst, const u_char *text,
    size_t len)
{
    ngx_int_t  n;

    n = ngx_atoi((u_char *) text, len);

    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    *(ngx_int_t *) dst = n;

    return NGX_OK;
}


/* an integer that fits 64 bits, no fraction or exponent */

static ngx_int_t
ngx_bayeux_decode_integer(ngx_pool_t *pool, void *dst, const u_char *text,
    size_t len)
{
    ngx_bayeux_ext_value_t *v = dst;

    int64_t        n, digit;
    ngx_uint_t     negative;
    const u_char  *pos, *last;

    pos = text;
    last = text + len;

    negative = (pos < last && *pos == '-');
    if (negative) {
        pos++;
    }

    if (pos == last) {
        return NGX_DECLINED;
    }

    for (n = 0; pos < last; pos++) {
        if (*pos < '0' || *pos > '9') {
            return NGX_DECLINED;
        }

        digit = *pos - '0';

        if (n > (INT64_MAX - digit) / 10) {
            return NGX_DECLINED;
        }

        n = n * 10 + digit;
    }

    v->value = negative ? -n : n;
    v->given = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_decode_boolean(ngx_pool_t *pool, void *dst, const u_char *text,
    size_t len)
{
    ngx_bayeux_ext_value_t *v = dst;

    v->value = (len == sizeof("true") - 1
                && ngx_strncmp(text, "true", len) == 0);
    v->given = 1;

    return NGX_OK;
}


/* the first string given, copied: yajl's buffer is reused */

static ngx_int_t
ngx_bayeux_decode_string(ngx_pool_t *pool, void *dst, const u_char *text,
    size_t len)
{
    ngx_str_t  *v = dst;

    if (v->data) {
        return NGX_DECLINED;
    }

    v->data = ngx_pnalloc(pool, len ? len : 1);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(v->data, text, len);
    v->len = len;

    return NGX_OK;
}


static int
ngx_bayeux_parse_null(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_event_e  rc;

    rc = ngx_bayeux_parser_event(p, NGX_BAYEUX_JSON_NULL);

    if (rc != ngx_bayeux_event_capture) {
        return rc != ngx_bayeux_event_error;
    }

    if (!ngx_bayeux_parser_gen(p, yajl_gen_null(p->gen))) {
        return 0;
    }

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_boolean(void *ctx, int value)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_str_t           text;
    ngx_bayeux_event_e  rc;

    rc = ngx_bayeux_parser_event(p, NGX_BAYEUX_JSON_BOOL);

    if (rc != ngx_bayeux_event_capture) {
        return rc != ngx_bayeux_event_error;
    }

    if (value) {
        ngx_str_set(&text, "true");

    } else {
        ngx_str_set(&text, "false");
    }

    if (!ngx_bayeux_parser_member(p, NGX_BAYEUX_JSON_BOOL, text.data,
                                  text.len))
    {
        return 0;
    }

    if (!ngx_bayeux_parser_gen(p, yajl_gen_bool(p->gen, value))) {
        return 0;
    }

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_number(void *ctx, const char *s, size_t len)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_event_e  rc;

    rc = ngx_bayeux_parser_event(p, NGX_BAYEUX_JSON_NUMBER);

    if (rc != ngx_bayeux_event_capture) {
        return rc != ngx_bayeux_event_error;
    }

    if (!ngx_bayeux_parser_member(p, NGX_BAYEUX_JSON_NUMBER, (u_char *) s,
                                  len))
    {
        return 0;
    }

    if (!ngx_bayeux_parser_gen(p, yajl_gen_number(p->gen, s, len))) {
        return 0;
    }

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_string(void *ctx, const unsigned char *s, size_t len)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_str_t           *dst;
    ngx_array_t         *strings;
    ngx_bayeux_field_t  *f;
    ngx_bayeux_event_e   rc;

    f = p->field;

    rc = ngx_bayeux_parser_event(p, NGX_BAYEUX_JSON_STRING);

    if (rc == ngx_bayeux_event_decode) {
        dst = (ngx_str_t *) ((u_char *) p->msg + f->offset);
        return ngx_bayeux_parser_copy(p, dst, s, len);
    }

    if (rc != ngx_bayeux_event_capture) {
        return rc != ngx_bayeux_event_error;
    }

    if (f->keep & NGX_BAYEUX_KEEP_STRINGS) {
        strings = *(ngx_array_t **) ((u_char *) p->msg + f->strings);

        dst = ngx_array_push(strings);
        if (dst == NULL) {
            return ngx_bayeux_parser_fail(p, "out of memory");
        }

        if (!ngx_bayeux_parser_copy(p, dst, s, len)) {
            return 0;
        }
    }

    if (!ngx_bayeux_parser_member(p, NGX_BAYEUX_JSON_STRING, s, len)) {
        return 0;
    }

    if (!ngx_bayeux_parser_gen(p, yajl_gen_string(p->gen, s, len))) {
        return 0;
    }

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_start_map(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_event_e  rc;

    rc = ngx_bayeux_parser_event(p, NGX_BAYEUX_JSON_MAP);

    if (rc == ngx_bayeux_event_error) {
        return 0;
    }

    if (!ngx_bayeux_parser_open(p)) {
        return 0;
    }

    if (rc == ngx_bayeux_event_message) {
        return ngx_bayeux_parser_message(p);
    }

    return ngx_bayeux_parser_gen(p, yajl_gen_map_open(p->gen));
}


static int
ngx_bayeux_parse_map_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_str_t            key;
    ngx_bayeux_field_t  *f;

    key.data = (u_char *) s;
    key.len = len;

    if (p->capturing) {
        ngx_bayeux_parser_member_key(p, &key);

        return ngx_bayeux_parser_gen(p, yajl_gen_string(p->gen, s, len));
    }

    p->field = &ngx_bayeux_field_unknown;

    for (f = ngx_bayeux_fields; f->key.len; f++) {
        if (ngx_bayeux_str_eq(&f->key, &key)) {
            p->field = f;
            break;
        }
    }

    return 1;
}


static int
ngx_bayeux_parse_end_map(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_parser_close(p);

    if (p->capturing) {

        if (!ngx_bayeux_parser_gen(p, yajl_gen_map_close(p->gen))) {
            return 0;
        }

        if (p->depth == p->capture_depth) {
            return ngx_bayeux_parser_capture_end(p);
        }

        return 1;
    }

    /* the end of a message */

    p->msg = NULL;

    return 1;
}


static int
ngx_bayeux_parse_start_array(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_event_e  rc;

    rc = ngx_bayeux_parser_event(p, NGX_BAYEUX_JSON_ARRAY);

    if (rc == ngx_bayeux_event_error) {
        return 0;
    }

    if (!ngx_bayeux_parser_open(p)) {
        return 0;
    }

    if (rc == ngx_bayeux_event_batch) {
        return 1;
    }

    return ngx_bayeux_parser_gen(p, yajl_gen_array_open(p->gen));
}


static int
ngx_bayeux_parse_end_array(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_parser_close(p);

    if (p->capturing) {

        if (!ngx_bayeux_parser_gen(p, yajl_gen_array_close(p->gen))) {
            return 0;
        }

        if (p->depth == p->capture_depth) {
            return ngx_bayeux_parser_capture_end(p);
        }

        return 1;
    }

    /* the end of the batch */

    return 1;
}
