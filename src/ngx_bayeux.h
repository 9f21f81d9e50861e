
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_H_INCLUDED_
#define _NGX_BAYEUX_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the module's version (CHANGES), and the Bayeux protocol it speaks */
#define NGX_BAYEUX_VERSION            "0.6.0"
#define NGX_BAYEUX_PROTOCOL_VERSION   "1.0"

#define NGX_BAYEUX_CLIENT_ID_BYTES    20
#define NGX_BAYEUX_CLIENT_ID_LEN      (NGX_BAYEUX_CLIENT_ID_BYTES * 2)
#define NGX_BAYEUX_MAX_JSON_DEPTH     64

#define NGX_BAYEUX_TRANSPORT_WEBSOCKET         0x01
#define NGX_BAYEUX_TRANSPORT_LONG_POLLING      0x02
#define NGX_BAYEUX_TRANSPORT_CALLBACK_POLLING  0x04

/* bayeux_browser_cookie_samesite */
#define NGX_BAYEUX_SAMESITE_OFF                0
#define NGX_BAYEUX_SAMESITE_STRICT             1
#define NGX_BAYEUX_SAMESITE_LAX                2
#define NGX_BAYEUX_SAMESITE_NONE               3


typedef struct ngx_bayeux_engine_s    ngx_bayeux_engine_t;
typedef struct ngx_bayeux_endpoint_s  ngx_bayeux_endpoint_t;
typedef struct ngx_bayeux_hooks_s     ngx_bayeux_hooks_t;


/* why a session ended */
#define NGX_BAYEUX_END_DISCONNECT     1
#define NGX_BAYEUX_END_EXPIRED        2
#define NGX_BAYEUX_END_OVERFLOW       3    /* its queue overflowed */
#define NGX_BAYEUX_END_INACTIVE       4    /* bayeux_max_inactivity */

/* bayeux_max_inactivity: what counts as a session's activity */
#define NGX_BAYEUX_ACTIVITY_CLIENT         0    /* its client's messages */
#define NGX_BAYEUX_ACTIVITY_CLIENT_SERVER  1    /* and what it is sent */

/* a session that ended, as the engine tells it (ep->session_ended) */

typedef struct {
    ngx_str_t                  client_id;
    ngx_str_t                  user;        /* empty: none */
    ngx_uint_t                 reason;      /* NGX_BAYEUX_END_* */
    unsigned                   last:1;      /* the user has no session left */
} ngx_bayeux_session_end_t;
typedef struct ngx_bayeux_jwt_key_s   ngx_bayeux_jwt_key_t;


typedef struct {
    ngx_array_t                endpoints;   /* ngx_bayeux_endpoint_t * */
    ngx_array_t                publishers;  /* ngx_bayeux_loc_conf_t * */
    ngx_shm_zone_t            *stats_zone;  /* the endpoints' counters */
} ngx_bayeux_main_conf_t;


typedef struct {
    ngx_flag_t                 enable;
    ngx_msec_t                 timeout;
    ngx_msec_t                 interval;
    ngx_msec_t                 max_interval;
    ngx_uint_t                 max_queue;
    size_t                     max_queue_size;
    ngx_flag_t                 timestamp;
    ngx_flag_t                 ack;
    ngx_msec_t                 max_inactivity;  /* 0: off */
    ngx_uint_t                 activity;        /* NGX_BAYEUX_ACTIVITY_* */
    ngx_uint_t                 max_batch;
    ngx_uint_t                 max_channels;
    ngx_uint_t                 max_subscriptions;
    ngx_flag_t                 broadcast_to_publisher;
    ngx_uint_t                 transports;
    ngx_uint_t                 max_sessions_per_browser;
    ngx_msec_t                 multi_session_interval;
    ngx_array_t               *allow_origin;    /* ngx_str_t */
    ngx_flag_t                 allow_credentials;
    ngx_flag_t                 trust_client_session;
    ngx_flag_t                 browser_cookie_secure;
    ngx_uint_t                 browser_cookie_samesite;
    ngx_flag_t                 browser_cookie_partitioned;
    size_t                     websocket_max_message;
    size_t                     websocket_max_output;
    ngx_msec_t                 websocket_idle_timeout;
    ngx_flag_t                 websocket_log;
    ngx_flag_t                 websocket_idle_timeout_auto;  /* not set */
    ngx_str_t                  websocket_protocol;
    ngx_str_t                  redis_url;
    ngx_str_t                  redis_prefix;
    ngx_uint_t                 redis_shards;
    ngx_msec_t                 redis_connect_timeout;
    ngx_msec_t                 redis_command_timeout;
    ngx_str_t                  redis_ssl_certificate;
    ngx_str_t                  redis_ssl_certificate_key;
    ngx_str_t                  redis_ssl_trusted_certificate;
    ngx_str_t                  redis_ssl_ciphers;
    ngx_str_t                  redis_ssl_name;      /* empty: the host */
    ngx_flag_t                 redis_ssl_verify;
    ngx_uint_t                 redis_ssl_verify_depth;
    ngx_flag_t                 redis_ssl_server_name;
    ngx_uint_t                 redis_ssl_protocols;
    ngx_str_t                  handshake_request;   /* empty: none */
    ngx_str_t                  subscribe_request;   /* empty: none */
    ngx_str_t                  publish_request;     /* empty: none */
    ngx_str_t                  service_request;     /* empty: none */
    ngx_str_t                  disconnect_request;  /* empty: none */
    ngx_str_t                  presence_channel;    /* empty: none */
    ngx_array_t               *lazy_channels;       /* ngx_str_t, or NULL */
    ngx_msec_t                 max_lazy_timeout;
    ngx_bayeux_jwt_key_t      *jwt_key;             /* NULL: none */
    ngx_bayeux_engine_t       *engine;
    ngx_bayeux_endpoint_t     *endpoint;

    /* bayeux_publisher: the name of the endpoint's location, and it */
    ngx_str_t                  publisher;
    ngx_bayeux_endpoint_t     *publisher_endpoint;
} ngx_bayeux_loc_conf_t;


/*
 * One Bayeux server: the sessions and channels behind one "bayeux"
 * location.  The engine keeps its state in "data".
 */

struct ngx_bayeux_endpoint_s {
    ngx_str_t                  name;        /* location name, for logs */

    /* the advice objects of the location, written once */
    ngx_str_t                  advice_retry;
    ngx_str_t                  advice_none;
    ngx_str_t                  advice_multiple;    /* multiple-clients */

    /* the names of the enabled transports, in the order they are offered */
    ngx_array_t                transports;         /* ngx_str_t */

    ngx_bayeux_loc_conf_t     *conf;
    ngx_bayeux_engine_t       *engine;
    void                      *data;

    /*
     * its counters in shared memory, NGX_BAYEUX_STAT_N of them
     * (src/engine/ngx_bayeux_stats.h), or NULL
     */
    ngx_atomic_t              *stats;

    /* what steps in around the engine (src/protocol/ngx_bayeux_hooks.h) */
    ngx_bayeux_hooks_t        *hooks;

    /*
     * told by the engine, when set (src/app/: notices to the application,
     * presence): a session ended (once, by whichever worker of whichever
     * host notices it), a user's first session began.  They are called
     * from inside the engine: they copy what they need and act later.
     */
    void                     (*session_ended)(ngx_bayeux_endpoint_t *ep,
                                              ngx_bayeux_session_end_t *e);
    void                     (*user_present)(ngx_bayeux_endpoint_t *ep,
                                             ngx_str_t *user);

    /* the location's configuration, for requests made for no client */
    ngx_http_conf_ctx_t       *conf_ctx;
    void                      *notices;     /* src/app/ngx_bayeux_notices.c */

    /*
     * the application is asked by subrequests (src/app/): a websocket
     * then keeps what a subrequest needs of its upgrade request
     */
    unsigned                   subrequests:1;

    /*
     * sessions carry what they were granted at handshake, which decides
     * their subscribes and publishes (any of the application's
     * directives is set: src/app/)
     */
    unsigned                   authorization:1;
};


extern ngx_module_t  ngx_bayeux_module;


#endif /* _NGX_BAYEUX_H_INCLUDED_ */
