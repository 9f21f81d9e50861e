
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"


/* the message fields the parser knows */

typedef enum {
    ngx_bayeux_field_other = 0,
    ngx_bayeux_field_channel,
    ngx_bayeux_field_client_id,
    ngx_bayeux_field_connection_type,
    ngx_bayeux_field_version,
    ngx_bayeux_field_minimum_version,
    ngx_bayeux_field_id,
    ngx_bayeux_field_data,
    ngx_bayeux_field_ext,
    ngx_bayeux_field_advice,
    ngx_bayeux_field_subscription,
    ngx_bayeux_field_connection_types
} ngx_bayeux_field_e;


typedef struct {
    ngx_str_t                  name;
    ngx_bayeux_field_e         field;
} ngx_bayeux_field_name_t;


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




enum {
    ngx_bayeux_advice_other = 0,
    ngx_bayeux_advice_timeout,
    ngx_bayeux_advice_interval
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

static int ngx_bayeux_parser_open(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_close(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_scalar(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_message(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_field(ngx_bayeux_parser_t *p, ngx_uint_t type);
static int ngx_bayeux_parser_event(ngx_bayeux_parser_t *p, ngx_uint_t type);
static int ngx_bayeux_parser_capture_start(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_capture_end(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_fail(ngx_bayeux_parser_t *p, char *reason);
static ngx_int_t ngx_bayeux_parser_check(ngx_bayeux_parser_t *p,
    u_char *data, size_t len);
static void ngx_bayeux_parser_text_error(ngx_bayeux_parser_t *p,
    char *fmt, size_t offset);
static int ngx_bayeux_parser_wrong_type(ngx_bayeux_parser_t *p);
static int ngx_bayeux_parser_copy(ngx_bayeux_parser_t *p, ngx_str_t *dst,
    const unsigned char *s, size_t len);
static void ngx_bayeux_parser_cleanup(ngx_bayeux_parser_t *p);
static void ngx_bayeux_parser_yajl_error(ngx_bayeux_parser_t *p,
    size_t offset);

static void *ngx_bayeux_arena_malloc(void *ctx, size_t size);
static void *ngx_bayeux_arena_realloc(void *ctx, void *ptr, size_t size);
static void ngx_bayeux_arena_free(void *ctx, void *ptr);


/*
 * yajl allocates from a buffer of the worker while a batch is parsed.
 * A batch is parsed in one go (created, fed, finished), so one parser at
 * a time uses it; what yajl needs (about 5 KB: its lexer and generator
 * buffers) then costs no malloc() and leaves no hole in the heap between
 * the allocations that outlive the request, such as sessions.  Another
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


static ngx_bayeux_field_name_t  ngx_bayeux_fields[] = {
    { ngx_string("channel"), ngx_bayeux_field_channel },
    { ngx_string("clientId"), ngx_bayeux_field_client_id },
    { ngx_string("connectionType"), ngx_bayeux_field_connection_type },
    { ngx_string("version"), ngx_bayeux_field_version },
    { ngx_string("minimumVersion"), ngx_bayeux_field_minimum_version },
    { ngx_string("id"), ngx_bayeux_field_id },
    { ngx_string("data"), ngx_bayeux_field_data },
    { ngx_string("ext"), ngx_bayeux_field_ext },
    { ngx_string("advice"), ngx_bayeux_field_advice },
    { ngx_string("subscription"), ngx_bayeux_field_subscription },
    { ngx_string("supportedConnectionTypes"),
      ngx_bayeux_field_connection_types },
    { ngx_null_string, ngx_bayeux_field_other }
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
     * (about 5 KB) need not live as long as a held connect, and the next
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
ngx_bayeux_parser_wrong_type(ngx_bayeux_parser_t *p)
{
    switch (p->field) {

    case ngx_bayeux_field_channel:
        return ngx_bayeux_parser_fail(p, "\"channel\" must be a string");

    case ngx_bayeux_field_client_id:
        return ngx_bayeux_parser_fail(p, "\"clientId\" must be a string");

    case ngx_bayeux_field_connection_type:
        return ngx_bayeux_parser_fail(p,
                                   "\"connectionType\" must be a string");

    case ngx_bayeux_field_version:
        return ngx_bayeux_parser_fail(p, "\"version\" must be a string");

    case ngx_bayeux_field_minimum_version:
        return ngx_bayeux_parser_fail(p,
                                   "\"minimumVersion\" must be a string");

    case ngx_bayeux_field_id:
        return ngx_bayeux_parser_fail(p,
                                   "\"id\" must be a string or a number");

    case ngx_bayeux_field_ext:
        return ngx_bayeux_parser_fail(p, "\"ext\" must be an object");

    case ngx_bayeux_field_advice:
        return ngx_bayeux_parser_fail(p, "\"advice\" must be an object");

    case ngx_bayeux_field_subscription:
        return ngx_bayeux_parser_fail(p, "\"subscription\" must be a string "
                                      "or an array of strings");

    case ngx_bayeux_field_connection_types:
        return ngx_bayeux_parser_fail(p, "\"supportedConnectionTypes\" "
                                      "must be an array of strings");

    default:
        return ngx_bayeux_parser_fail(p, "unexpected value");
    }
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
    p->msg_depth = p->depth;
    p->field = ngx_bayeux_field_other;

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


static int
ngx_bayeux_parser_close(ngx_bayeux_parser_t *p)
{
    p->depth--;
    return 1;
}


static int
ngx_bayeux_parser_capture_start(ngx_bayeux_parser_t *p)
{
    yajl_gen_clear(p->gen);
    yajl_gen_reset(p->gen, NULL);

    p->capturing = 1;
    p->capture_depth = p->depth;
    p->advice_key = ngx_bayeux_advice_other;

    if (p->field == ngx_bayeux_field_subscription) {
        p->msg->subscriptions = ngx_array_create(p->pool, 2,
                                                 sizeof(ngx_str_t));
        if (p->msg->subscriptions == NULL) {
            return ngx_bayeux_parser_fail(p, "out of memory");
        }

    } else if (p->field == ngx_bayeux_field_connection_types) {
        p->msg->connection_types = ngx_array_create(p->pool, 4,
                                                    sizeof(ngx_str_t));
        if (p->msg->connection_types == NULL) {
            return ngx_bayeux_parser_fail(p, "out of memory");
        }

        p->msg->has_connection_types = 1;
    }

    return 1;
}


static int
ngx_bayeux_parser_capture_end(ngx_bayeux_parser_t *p)
{
    size_t                len;
    ngx_str_t            *dst;
    const unsigned char  *buf;

    p->capturing = 0;

    switch (p->field) {

    case ngx_bayeux_field_id:
        dst = &p->msg->id;
        break;

    case ngx_bayeux_field_data:
        dst = &p->msg->data;
        break;

    case ngx_bayeux_field_ext:
        dst = &p->msg->ext;
        break;

    case ngx_bayeux_field_subscription:
        dst = &p->msg->subscription;
        break;

    default:
        dst = NULL;
    }

    p->field = ngx_bayeux_field_other;

    if (dst == NULL) {
        return 1;
    }

    if (yajl_gen_get_buf(p->gen, &buf, &len) != yajl_gen_status_ok) {
        return ngx_bayeux_parser_fail(p, "out of memory");
    }

    return ngx_bayeux_parser_copy(p, dst, buf, len);
}


/* a scalar that is a whole field value */

static int
ngx_bayeux_parser_scalar(ngx_bayeux_parser_t *p)
{
    if (p->capturing && p->depth == p->capture_depth) {
        return ngx_bayeux_parser_capture_end(p);
    }

    return 1;
}


#define ngx_bayeux_gen(p, call)                                               \
    if ((call) != yajl_gen_status_ok) {                                       \
        return ngx_bayeux_parser_fail(p, "cannot re-encode JSON");            \
    }


/*
 * Decides what to do with a field value that starts at message level.
 * "type" is one of the yajl event kinds below.
 */

enum {
    ngx_bayeux_value_null = 0,
    ngx_bayeux_value_bool,
    ngx_bayeux_value_number,
    ngx_bayeux_value_string,
    ngx_bayeux_value_map,
    ngx_bayeux_value_array
};


static int
ngx_bayeux_parser_field(ngx_bayeux_parser_t *p, ngx_uint_t type)
{
    ngx_uint_t  ok;

    if (type == ngx_bayeux_value_null
        && p->field != ngx_bayeux_field_data)
    {
        /* a null field is an absent field */
        p->field = ngx_bayeux_field_other;
        return 1;
    }

    switch (p->field) {

    case ngx_bayeux_field_channel:
    case ngx_bayeux_field_client_id:
    case ngx_bayeux_field_connection_type:
    case ngx_bayeux_field_version:
    case ngx_bayeux_field_minimum_version:

        if (type != ngx_bayeux_value_string) {
            return ngx_bayeux_parser_wrong_type(p);
        }

        /* decoded by the string handler, not captured */
        return 1;

    case ngx_bayeux_field_id:
        ok = (type == ngx_bayeux_value_string
              || type == ngx_bayeux_value_number);
        break;

    case ngx_bayeux_field_ext:
    case ngx_bayeux_field_advice:
        ok = (type == ngx_bayeux_value_map);
        break;

    case ngx_bayeux_field_subscription:
        ok = (type == ngx_bayeux_value_string
              || type == ngx_bayeux_value_array);
        break;

    case ngx_bayeux_field_connection_types:
        ok = (type == ngx_bayeux_value_array);
        break;

    default:
        ok = 1;
    }

    if (!ok) {
        return ngx_bayeux_parser_wrong_type(p);
    }

    return ngx_bayeux_parser_capture_start(p);
}


/*
 * Every value event goes through here first.  Returns 0 on error, 1 when
 * the event is to be passed on to the capture generator, 2 when it was
 * fully handled, and 3 for the start of a message object.
 */

static int
ngx_bayeux_parser_event(ngx_bayeux_parser_t *p, ngx_uint_t type)
{
    if (p->capturing) {

        /* the elements of these arrays must be strings */

        if ((p->field == ngx_bayeux_field_subscription
             || p->field == ngx_bayeux_field_connection_types)
            && p->depth == p->capture_depth + 1
            && type != ngx_bayeux_value_string)
        {
            return ngx_bayeux_parser_wrong_type(p);
        }

        return 1;
    }

    if (!p->started) {
        p->started = 1;

        if (type == ngx_bayeux_value_array) {
            p->batch = 1;
            return 2;
        }

        if (type == ngx_bayeux_value_map) {
            return 3;
        }

        return ngx_bayeux_parser_fail(p,
                        "body is not a message or an array of messages");
    }

    if (p->msg == NULL) {
        if (p->batch && p->depth == 1 && type == ngx_bayeux_value_map) {
            return 3;
        }

        return ngx_bayeux_parser_fail(p,
                                  "batch element is not a message object");
    }

    /* a field value at message level */

    if (!ngx_bayeux_parser_field(p, type)) {
        return 0;
    }

    return p->capturing ? 1 : 2;
}


static int
ngx_bayeux_parse_null(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    int  rc;

    rc = ngx_bayeux_parser_event(p, ngx_bayeux_value_null);
    if (rc != 1) {
        return rc ? 1 : 0;
    }

    ngx_bayeux_gen(p, yajl_gen_null(p->gen));

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_boolean(void *ctx, int value)
{
    ngx_bayeux_parser_t *p = ctx;

    int  rc;

    rc = ngx_bayeux_parser_event(p, ngx_bayeux_value_bool);
    if (rc != 1) {
        return rc ? 1 : 0;
    }

    ngx_bayeux_gen(p, yajl_gen_bool(p->gen, value));

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_number(void *ctx, const char *s, size_t len)
{
    ngx_bayeux_parser_t *p = ctx;

    int        rc;
    ngx_int_t  n;

    rc = ngx_bayeux_parser_event(p, ngx_bayeux_value_number);
    if (rc != 1) {
        return rc ? 1 : 0;
    }

    if (p->field == ngx_bayeux_field_advice
        && p->depth == p->capture_depth + 1
        && p->advice_key != ngx_bayeux_advice_other)
    {
        n = ngx_atoi((u_char *) s, len);

        if (n != NGX_ERROR) {
            if (p->advice_key == ngx_bayeux_advice_timeout) {
                p->msg->advice_timeout = n;

            } else {
                p->msg->advice_interval = n;
            }
        }
    }

    ngx_bayeux_gen(p, yajl_gen_number(p->gen, s, len));

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_string(void *ctx, const unsigned char *s, size_t len)
{
    ngx_bayeux_parser_t *p = ctx;

    int         rc;
    ngx_str_t  *dst;

    rc = ngx_bayeux_parser_event(p, ngx_bayeux_value_string);
    if (rc == 0) {
        return 0;
    }

    if (rc == 2) {
        switch (p->field) {

        case ngx_bayeux_field_channel:
            dst = &p->msg->channel;
            break;

        case ngx_bayeux_field_client_id:
            dst = &p->msg->client_id;
            break;

        case ngx_bayeux_field_connection_type:
            dst = &p->msg->connection_type;
            break;

        case ngx_bayeux_field_version:
            dst = &p->msg->version;
            break;

        case ngx_bayeux_field_minimum_version:
            dst = &p->msg->minimum_version;
            break;

        default:
            dst = NULL;
        }

        p->field = ngx_bayeux_field_other;

        return dst ? ngx_bayeux_parser_copy(p, dst, s, len) : 1;
    }

    if (p->field == ngx_bayeux_field_subscription
        || p->field == ngx_bayeux_field_connection_types)
    {
        dst = ngx_array_push(p->field == ngx_bayeux_field_subscription
                             ? p->msg->subscriptions
                             : p->msg->connection_types);
        if (dst == NULL) {
            return ngx_bayeux_parser_fail(p, "out of memory");
        }

        if (!ngx_bayeux_parser_copy(p, dst, s, len)) {
            return 0;
        }
    }

    ngx_bayeux_gen(p, yajl_gen_string(p->gen, s, len));

    return ngx_bayeux_parser_scalar(p);
}


static int
ngx_bayeux_parse_start_map(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    int  rc;

    rc = ngx_bayeux_parser_event(p, ngx_bayeux_value_map);
    if (rc == 0) {
        return 0;
    }

    if (!ngx_bayeux_parser_open(p)) {
        return 0;
    }

    if (rc == 3) {
        return ngx_bayeux_parser_message(p);
    }

    ngx_bayeux_gen(p, yajl_gen_map_open(p->gen));

    return 1;
}


static int
ngx_bayeux_parse_map_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_bayeux_parser_t *p = ctx;

    ngx_bayeux_field_name_t  *f;

    if (p->capturing) {

        if (p->field == ngx_bayeux_field_advice
            && p->depth == p->capture_depth + 1)
        {
            if (len == 7 && ngx_strncmp(s, "timeout", 7) == 0) {
                p->advice_key = ngx_bayeux_advice_timeout;

            } else if (len == 8 && ngx_strncmp(s, "interval", 8) == 0) {
                p->advice_key = ngx_bayeux_advice_interval;

            } else {
                p->advice_key = ngx_bayeux_advice_other;
            }
        }

        ngx_bayeux_gen(p, yajl_gen_string(p->gen, s, len));

        return 1;
    }

    p->field = ngx_bayeux_field_other;

    for (f = ngx_bayeux_fields; f->name.len; f++) {
        if (f->name.len == len && ngx_strncmp(f->name.data, s, len) == 0) {
            p->field = f->field;
            break;
        }
    }

    return 1;
}


static int
ngx_bayeux_parse_end_map(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    if (p->capturing) {
        ngx_bayeux_gen(p, yajl_gen_map_close(p->gen));

        ngx_bayeux_parser_close(p);

        if (p->depth == p->capture_depth) {
            return ngx_bayeux_parser_capture_end(p);
        }

        return 1;
    }

    /* the end of a message */

    ngx_bayeux_parser_close(p);

    p->msg = NULL;
    p->msg_depth = 0;

    return 1;
}


static int
ngx_bayeux_parse_start_array(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    int  rc;

    rc = ngx_bayeux_parser_event(p, ngx_bayeux_value_array);
    if (rc == 0) {
        return 0;
    }

    if (!ngx_bayeux_parser_open(p)) {
        return 0;
    }

    if (rc == 2) {
        /* the batch */
        return 1;
    }

    ngx_bayeux_gen(p, yajl_gen_array_open(p->gen));

    return 1;
}


static int
ngx_bayeux_parse_end_array(void *ctx)
{
    ngx_bayeux_parser_t *p = ctx;

    if (p->capturing) {
        ngx_bayeux_gen(p, yajl_gen_array_close(p->gen));

        ngx_bayeux_parser_close(p);

        if (p->depth == p->capture_depth) {
            return ngx_bayeux_parser_capture_end(p);
        }

        return 1;
    }

    /* the end of the batch */

    ngx_bayeux_parser_close(p);

    return 1;
}
