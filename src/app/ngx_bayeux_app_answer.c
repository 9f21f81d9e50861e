
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_app_answer.h"


/*
 * yajl's callbacks read the top-level object: a member the table names
 * is decoded (a string, an array of strings) or captured as compact
 * JSON text (ext, data); any other member is skipped, whatever it holds.
 */

typedef enum {
    ngx_bayeux_answer_string = 0,
    ngx_bayeux_answer_strings,
    ngx_bayeux_answer_object,
    ngx_bayeux_answer_any
} ngx_bayeux_answer_type_e;


typedef struct {
    ngx_str_t                  key;
    ngx_bayeux_answer_type_e   type;
    size_t                     offset;      /* in ngx_bayeux_app_answer_t */
} ngx_bayeux_answer_member_t;


typedef struct {
    ngx_pool_t                    *pool;
    ngx_bayeux_app_answer_t       *answer;
    yajl_gen                       gen;

    ngx_uint_t                     depth;
    ngx_bayeux_answer_member_t    *member;  /* the value read, or NULL */
    ngx_array_t                   *strings; /* an array being read */
    ngx_uint_t                     capturing;
    const char                    *why;
} ngx_bayeux_answer_parser_t;


#define ngx_bayeux_answer_field(f)  offsetof(ngx_bayeux_app_answer_t, f)

static ngx_bayeux_answer_member_t  ngx_bayeux_answer_members[] = {
    { ngx_string("user"), ngx_bayeux_answer_string,
      ngx_bayeux_answer_field(grants.user) },
    { ngx_string("subscribe"), ngx_bayeux_answer_strings,
      ngx_bayeux_answer_field(grants.subscribe) },
    { ngx_string("publish"), ngx_bayeux_answer_strings,
      ngx_bayeux_answer_field(grants.publish) },
    { ngx_string("ext"), ngx_bayeux_answer_object,
      ngx_bayeux_answer_field(ext) },
    { ngx_string("data"), ngx_bayeux_answer_any,
      ngx_bayeux_answer_field(data) },
    { ngx_string("reason"), ngx_bayeux_answer_string,
      ngx_bayeux_answer_field(reason) },
    { ngx_null_string, 0, 0 }
};


static int ngx_bayeux_answer_null(void *ctx);
static int ngx_bayeux_answer_boolean(void *ctx, int v);
static int ngx_bayeux_answer_number(void *ctx, const char *s, size_t len);
static int ngx_bayeux_answer_string_cb(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bayeux_answer_start_map(void *ctx);
static int ngx_bayeux_answer_map_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bayeux_answer_end_map(void *ctx);
static int ngx_bayeux_answer_start_array(void *ctx);
static int ngx_bayeux_answer_end_array(void *ctx);
static int ngx_bayeux_answer_scalar(ngx_bayeux_answer_parser_t *p,
    yajl_gen_status status);
static int ngx_bayeux_answer_open(ngx_bayeux_answer_parser_t *p,
    ngx_uint_t map);
static int ngx_bayeux_answer_close(ngx_bayeux_answer_parser_t *p,
    yajl_gen_status status);
static int ngx_bayeux_answer_captured(ngx_bayeux_answer_parser_t *p);
static int ngx_bayeux_answer_wrong(ngx_bayeux_answer_parser_t *p);


static yajl_callbacks  ngx_bayeux_answer_callbacks = {
    ngx_bayeux_answer_null,
    ngx_bayeux_answer_boolean,
    NULL,
    NULL,
    ngx_bayeux_answer_number,
    ngx_bayeux_answer_string_cb,
    ngx_bayeux_answer_start_map,
    ngx_bayeux_answer_map_key,
    ngx_bayeux_answer_end_map,
    ngx_bayeux_answer_start_array,
    ngx_bayeux_answer_end_array
};


static ngx_int_t ngx_bayeux_answer_run(ngx_str_t *body, ngx_pool_t *pool,
    ngx_bayeux_app_answer_t *a, const char **why, ngx_uint_t whole);


ngx_int_t
ngx_bayeux_app_answer_parse(ngx_str_t *body, ngx_pool_t *pool,
    ngx_bayeux_app_answer_t *a, const char **why)
{
    return ngx_bayeux_answer_run(body, pool, a, why, 0);
}


ngx_int_t
ngx_bayeux_app_answer_value(ngx_str_t *body, ngx_pool_t *pool,
    ngx_bayeux_app_answer_t *a, const char **why)
{
    return ngx_bayeux_answer_run(body, pool, a, why, 1);
}


/*
 * "whole": the body is the value of "data", as if inside the top-level
 * object already
 */

static ngx_int_t
ngx_bayeux_answer_run(ngx_str_t *body, ngx_pool_t *pool,
    ngx_bayeux_app_answer_t *a, const char **why, ngx_uint_t whole)
{
    u_char                      *p, *last;
    ngx_int_t                    rc;
    yajl_handle                  h;
    yajl_status                  status;
    ngx_bayeux_answer_parser_t   ap;

    ngx_memzero(a, sizeof(ngx_bayeux_app_answer_t));

    last = body->data + body->len;

    for (p = body->data; p < last; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            break;
        }
    }

    if (p == last) {
        return NGX_OK;
    }

    ngx_memzero(&ap, sizeof(ngx_bayeux_answer_parser_t));
    ap.pool = pool;
    ap.answer = a;
    ap.why = whole ? "the answer is not JSON"
                   : "the answer is not a JSON object";

    if (whole) {
        ap.depth = 1;

        for (ap.member = ngx_bayeux_answer_members;
             ap.member->offset != ngx_bayeux_answer_field(data);
             ap.member++)
        {
            /* void */
        }
    }

    ap.gen = yajl_gen_alloc(NULL);
    if (ap.gen == NULL) {
        return NGX_ERROR;
    }

    /* what is captured goes to websocket peers: UTF-8 only */
    yajl_gen_config(ap.gen, yajl_gen_validate_utf8, 1);

    h = yajl_alloc(&ngx_bayeux_answer_callbacks, NULL, &ap);
    if (h == NULL) {
        yajl_gen_free(ap.gen);
        return NGX_ERROR;
    }

    status = yajl_parse(h, p, last - p);

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    if (status == yajl_status_ok) {
        rc = NGX_OK;

    } else {
        rc = (ap.why == NULL) ? NGX_ERROR : NGX_DECLINED;
        *why = ap.why;
    }

    yajl_free(h);
    yajl_gen_free(ap.gen);

    return rc;
}


static int
ngx_bayeux_answer_null(void *ctx)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    return ngx_bayeux_answer_scalar(p, yajl_gen_null(p->gen));
}


static int
ngx_bayeux_answer_boolean(void *ctx, int v)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    return ngx_bayeux_answer_scalar(p, yajl_gen_bool(p->gen, v));
}


static int
ngx_bayeux_answer_number(void *ctx, const char *s, size_t len)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    return ngx_bayeux_answer_scalar(p, yajl_gen_number(p->gen, s, len));
}


static int
ngx_bayeux_answer_string_cb(void *ctx, const unsigned char *s, size_t len)
{
    ngx_str_t                   *v;
    ngx_bayeux_answer_parser_t  *p = ctx;

    if (p->capturing || p->member == NULL
        || p->member->type == ngx_bayeux_answer_any)
    {
        return ngx_bayeux_answer_scalar(p, yajl_gen_string(p->gen, s, len));
    }

    if (p->member->type == ngx_bayeux_answer_string && p->strings == NULL
        && p->depth == 1)
    {
        v = (ngx_str_t *) ((u_char *) p->answer + p->member->offset);

    } else if (p->member->type == ngx_bayeux_answer_strings
               && p->strings && p->depth == 2)
    {
        v = ngx_array_push(p->strings);
        if (v == NULL) {
            p->why = NULL;
            return 0;
        }

    } else {
        return ngx_bayeux_answer_wrong(p);
    }

    v->len = len;
    v->data = ngx_pnalloc(p->pool, len);
    if (v->data == NULL) {
        p->why = NULL;
        return 0;
    }

    ngx_memcpy(v->data, s, len);

    if (p->depth == 1) {
        p->member = NULL;
    }

    return 1;
}


static int
ngx_bayeux_answer_start_map(void *ctx)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    if (p->depth == 0) {
        p->depth = 1;
        return 1;
    }

    return ngx_bayeux_answer_open(p, 1);
}


static int
ngx_bayeux_answer_map_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_bayeux_answer_member_t  *m;
    ngx_bayeux_answer_parser_t  *p = ctx;

    if (p->depth > 1) {
        return ngx_bayeux_answer_scalar(p, yajl_gen_string(p->gen, s, len));
    }

    p->member = NULL;

    for (m = ngx_bayeux_answer_members; m->key.len; m++) {
        if (m->key.len == len && ngx_strncmp(m->key.data, s, len) == 0) {
            p->member = m;
            break;
        }
    }

    return 1;
}


static int
ngx_bayeux_answer_end_map(void *ctx)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    if (p->depth == 1) {
        p->depth = 0;
        return 1;
    }

    return ngx_bayeux_answer_close(p, yajl_gen_map_close(p->gen));
}


static int
ngx_bayeux_answer_start_array(void *ctx)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    if (p->depth == 0) {
        return ngx_bayeux_answer_wrong(p);
    }

    if (p->depth == 1 && p->member
        && p->member->type == ngx_bayeux_answer_strings)
    {
        p->strings = ngx_array_create(p->pool, 4, sizeof(ngx_str_t));
        if (p->strings == NULL) {
            p->why = NULL;
            return 0;
        }

        *(ngx_array_t **) ((u_char *) p->answer + p->member->offset) =
                                                                 p->strings;
        p->depth = 2;
        return 1;
    }

    return ngx_bayeux_answer_open(p, 0);
}


static int
ngx_bayeux_answer_end_array(void *ctx)
{
    ngx_bayeux_answer_parser_t  *p = ctx;

    if (p->strings && p->depth == 2) {
        p->strings = NULL;
        p->member = NULL;
        p->depth = 1;
        return 1;
    }

    return ngx_bayeux_answer_close(p, yajl_gen_array_close(p->gen));
}


/* a scalar: inside a capture, a whole value captured, or skipped */

static int
ngx_bayeux_answer_scalar(ngx_bayeux_answer_parser_t *p,
    yajl_gen_status status)
{
    if (p->capturing) {
        if (status != yajl_gen_status_ok) {
            p->why = "the answer has text that is not UTF-8";
            return 0;
        }

        return 1;
    }

    if (p->depth == 0 || p->strings) {
        return ngx_bayeux_answer_wrong(p);
    }

    if (p->member == NULL) {
        /* a member nobody reads */
        yajl_gen_clear(p->gen);
        yajl_gen_reset(p->gen, NULL);
        return 1;
    }

    if (p->member->type != ngx_bayeux_answer_any) {
        return ngx_bayeux_answer_wrong(p);
    }

    if (status != yajl_gen_status_ok) {
        p->why = "the answer has text that is not UTF-8";
        return 0;
    }

    return ngx_bayeux_answer_captured(p);
}


/* an object or an array in a member's value */

static int
ngx_bayeux_answer_open(ngx_bayeux_answer_parser_t *p, ngx_uint_t map)
{
    if (p->strings) {
        return ngx_bayeux_answer_wrong(p);
    }

    if (++p->depth > NGX_BAYEUX_MAX_JSON_DEPTH) {
        p->why = "the answer is nested too deep";
        return 0;
    }

    if (p->capturing == 0) {
        if (p->member
            && (p->member->type == ngx_bayeux_answer_string
                || p->member->type == ngx_bayeux_answer_strings
                || (p->member->type == ngx_bayeux_answer_object && !map)))
        {
            return ngx_bayeux_answer_wrong(p);
        }

        yajl_gen_clear(p->gen);
        yajl_gen_reset(p->gen, NULL);
    }

    p->capturing++;

    return (map ? yajl_gen_map_open(p->gen) : yajl_gen_array_open(p->gen))
           == yajl_gen_status_ok;
}


static int
ngx_bayeux_answer_close(ngx_bayeux_answer_parser_t *p,
    yajl_gen_status status)
{
    if (status != yajl_gen_status_ok) {
        p->why = "the answer is not a JSON object";
        return 0;
    }

    p->depth--;

    if (--p->capturing) {
        return 1;
    }

    if (p->member == NULL) {
        return 1;
    }

    return ngx_bayeux_answer_captured(p);
}


/* the value of a member, as compact JSON text */

static int
ngx_bayeux_answer_captured(ngx_bayeux_answer_parser_t *p)
{
    size_t                len;
    ngx_str_t            *v;
    const unsigned char  *buf;

    if (yajl_gen_get_buf(p->gen, &buf, &len) != yajl_gen_status_ok) {
        p->why = NULL;
        return 0;
    }

    v = (ngx_str_t *) ((u_char *) p->answer + p->member->offset);

    v->len = len;
    v->data = ngx_pnalloc(p->pool, len);
    if (v->data == NULL) {
        p->why = NULL;
        return 0;
    }

    ngx_memcpy(v->data, buf, len);

    yajl_gen_clear(p->gen);
    yajl_gen_reset(p->gen, NULL);

    p->member = NULL;

    return 1;
}


static int
ngx_bayeux_answer_wrong(ngx_bayeux_answer_parser_t *p)
{
    p->why = (p->depth == 0) ? "the answer is not a JSON object"
                             : "a member of the answer has the wrong type";
    return 0;
}
