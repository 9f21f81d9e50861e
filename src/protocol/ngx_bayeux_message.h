
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_MESSAGE_H_INCLUDED_
#define _NGX_BAYEUX_MESSAGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>


/*
 * What a message is, told once from its channel by the batch
 * (ngx_bayeux_meta_kind()): the code after that compares kinds, and
 * hooks choose the kinds they see with a mask of them.
 */

typedef enum {
    NGX_BAYEUX_KIND_NONE = 0,          /* channel missing or invalid */
    NGX_BAYEUX_KIND_HANDSHAKE,
    NGX_BAYEUX_KIND_CONNECT,
    NGX_BAYEUX_KIND_SUBSCRIBE,
    NGX_BAYEUX_KIND_UNSUBSCRIBE,
    NGX_BAYEUX_KIND_DISCONNECT,
    NGX_BAYEUX_KIND_META,              /* any other /meta channel */
    NGX_BAYEUX_KIND_SERVICE,
    NGX_BAYEUX_KIND_PUBLISH
} ngx_bayeux_kind_e;

#define ngx_bayeux_kind_mask(kind)     ((ngx_uint_t) 1 << (kind))
#define NGX_BAYEUX_KIND_ANY            ((ngx_uint_t) -1)


/*
 * What the server extensions read in "ext": CometD's ack extension (a
 * handshake offers acknowledgements, true or false, or an object
 * {"enabled":true,"batch":N} from newer clients; a /meta/connect sends
 * the last batch it received) and its timesync extension ({"tc":client
 * time, "l":network lag, "o":clock offset}, in ms), and the signed
 * token bayeux_jwt_key checks ("token": a string).  ext is free-form:
 * a value of another type is not given here, and the request goes on.
 */

typedef struct {
    int64_t                    value;
    unsigned                   given:1;
} ngx_bayeux_ext_value_t;


typedef struct {
    ngx_bayeux_ext_value_t     ack_enabled;     /* ack, ack.enabled: 1, 0 */
    ngx_bayeux_ext_value_t     ack_batch;       /* ack number, ack.batch */
    ngx_bayeux_ext_value_t     timesync_tc;
    ngx_bayeux_ext_value_t     timesync_l;
    ngx_bayeux_ext_value_t     timesync_o;

    /* not parsed: the server's time when the message came, in ms */
    ngx_bayeux_ext_value_t     timesync_ts;

    ngx_str_t                  token;           /* the first string */
} ngx_bayeux_ext_t;


/*
 * One incoming Bayeux message, filled by the parser's table of fields
 * (ngx_bayeux_fields in ngx_bayeux_message.c).  Values the module only
 * passes along (data, ext, id) are kept as compact JSON text; the fields
 * it acts on are decoded.  An empty ngx_str_t means "absent".
 */

typedef struct {
    ngx_str_t                  channel;
    ngx_str_t                  client_id;
    ngx_str_t                  user;            /* the publisher's */
    ngx_str_t                  connection_type;
    ngx_str_t                  version;
    ngx_str_t                  minimum_version;

    ngx_str_t                  id;              /* JSON text */
    ngx_str_t                  data;            /* JSON text */
    ngx_str_t                  ext;             /* JSON text, echoed */
    ngx_str_t                  subscription;    /* JSON text, as sent */

    ngx_array_t               *subscriptions;   /* ngx_str_t */
    ngx_array_t               *connection_types;/* ngx_str_t */

    ngx_int_t                  advice_timeout;  /* -1: not given */
    ngx_int_t                  advice_interval; /* -1: not given */

    ngx_bayeux_ext_t           ext_values;      /* decoded from ext */

    /* the reply's "ext" and "data", given by a hook (JSON text) */
    ngx_str_t                  reply_ext;
    ngx_str_t                  reply_data;

    ngx_uint_t                 kind;            /* ngx_bayeux_kind_e */

    unsigned                   disconnected:1;      /* applied: done */
    unsigned                   refused:1;           /* its reply fails */
} ngx_bayeux_message_t;


/* a batch's parser: yajl's callbacks build the messages in a pool */

typedef struct ngx_bayeux_parser_s  ngx_bayeux_parser_t;
typedef struct ngx_bayeux_field_s   ngx_bayeux_field_t;
typedef struct ngx_bayeux_member_s  ngx_bayeux_member_t;

struct ngx_bayeux_parser_s {
    ngx_pool_t                *pool;
    yajl_handle                handle;
    yajl_gen                   gen;

    ngx_array_t               *messages;
    ngx_bayeux_message_t      *msg;
    ngx_uint_t                 max_messages;

    ngx_uint_t                 depth;
    ngx_bayeux_field_t        *field;       /* row of the message's key */
    ngx_uint_t                 capture_depth;
    ngx_bayeux_member_t       *member;      /* rows of the field's key */
    ngx_bayeux_member_t       *submember;   /* rows of the member's key */

    size_t                     bytes;
    ngx_str_t                  error;

    /* the text check: see ngx_bayeux_parser_check() */
    size_t                     escape_at;
    ngx_uint_t                 text_state;
    ngx_uint_t                 code;
    ngx_uint_t                 digits;
    ngx_uint_t                 utf8_need;
    u_char                     utf8_min;
    u_char                     utf8_max;

    unsigned                   started:1;
    unsigned                   arena:1;
    unsigned                   batch:1;
    unsigned                   capturing:1;
};


ngx_int_t ngx_bayeux_parser_init(ngx_bayeux_parser_t *p, ngx_pool_t *pool,
    ngx_uint_t max_messages);
ngx_int_t ngx_bayeux_parser_feed(ngx_bayeux_parser_t *p, u_char *data,
    size_t len);
ngx_int_t ngx_bayeux_parser_finish(ngx_bayeux_parser_t *p);
ngx_array_t *ngx_bayeux_parser_messages(ngx_bayeux_parser_t *p);
ngx_str_t *ngx_bayeux_parser_error(ngx_bayeux_parser_t *p);

/*
 * yajl allocating from "pool", for a short parse of a small text whose
 * memory may go with the pool: no malloc() per parse, nothing to free
 */
void ngx_bayeux_yajl_pool_funcs(yajl_alloc_funcs *af, ngx_pool_t *pool);


#endif /* _NGX_BAYEUX_MESSAGE_H_INCLUDED_ */
