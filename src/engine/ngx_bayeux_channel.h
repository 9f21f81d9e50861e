
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_CHANNEL_H_INCLUDED_
#define _NGX_BAYEUX_CHANNEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_BAYEUX_CHANNEL_META        0x01
#define NGX_BAYEUX_CHANNEL_SERVICE     0x02
#define NGX_BAYEUX_CHANNEL_WILD        0x04    /* ends in "*" */
#define NGX_BAYEUX_CHANNEL_DEEP_WILD   0x08    /* ends in "**" */

#define NGX_BAYEUX_CHANNEL_MAX_LEN     1024


ngx_int_t ngx_bayeux_channel_parse(ngx_str_t *name, ngx_uint_t *flags);


/*
 * Walks the wildcard patterns that match a channel name, most specific
 * first: for "/a/b/c" these are "/a/b/ *", "/a/b/ **", "/a/ **" and
 * "/ **" (without the blanks).
 * "buf" must hold name->len + 2 bytes.
 */

typedef struct {
    ngx_str_t                  name;
    u_char                    *buf;
    size_t                     prefix;      /* bytes up to a "/" */
    ngx_uint_t                 step;
} ngx_bayeux_wildcards_t;


void ngx_bayeux_wildcards_init(ngx_bayeux_wildcards_t *w, ngx_str_t *name,
    u_char *buf);
ngx_int_t ngx_bayeux_wildcards_next(ngx_bayeux_wildcards_t *w,
    ngx_str_t *pattern);


#endif /* _NGX_BAYEUX_CHANNEL_H_INCLUDED_ */
