
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_engine_redis.h"
#include "ngx_bayeux_handler.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_lazy.h"
#include "ngx_bayeux_app.h"
#include "ngx_bayeux_variables.h"
#include "ngx_bayeux_publisher.h"
#include "ngx_bayeux_notices.h"
#include "ngx_bayeux_jwt.h"
#include "ngx_bayeux_status.h"


static ngx_int_t ngx_bayeux_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_bayeux_postconfiguration(ngx_conf_t *cf);
static void *ngx_bayeux_create_main_conf(ngx_conf_t *cf);
static void *ngx_bayeux_create_loc_conf(ngx_conf_t *cf);
static char *ngx_bayeux_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_bayeux(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_bayeux_engine(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_bayeux_positive_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_bayeux_bounds(ngx_conf_t *cf, void *post, void *data);
static char *ngx_bayeux_transports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_bayeux_allow_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_uint_t ngx_bayeux_allow_origin_any(ngx_array_t *origins);
static char *ngx_bayeux_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_bayeux_not_empty(ngx_conf_t *cf, void *post, void *data);
static char *ngx_bayeux_max_inactivity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_bayeux_check_location(ngx_conf_t *cf,
    ngx_bayeux_loc_conf_t *conf);
static ngx_uint_t ngx_bayeux_location_returns(ngx_conf_t *cf);
static ngx_bayeux_main_conf_t *ngx_bayeux_cycle_main_conf(
    ngx_cycle_t *cycle);
static ngx_int_t ngx_bayeux_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_bayeux_init_process(ngx_cycle_t *cycle);
static void ngx_bayeux_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_bayeux_positive_msec_p =
    ngx_bayeux_positive_msec;

static ngx_conf_post_handler_pt  ngx_bayeux_redis_url_p =
    ngx_bayeux_redis_url_post;

#if (NGX_SSL)

static ngx_conf_bitmask_t  ngx_bayeux_redis_ssl_protocols[] = {
    { ngx_string("SSLv2"), NGX_SSL_SSLv2 },
    { ngx_string("SSLv3"), NGX_SSL_SSLv3 },
    { ngx_string("TLSv1"), NGX_SSL_TLSv1 },
    { ngx_string("TLSv1.1"), NGX_SSL_TLSv1_1 },
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
    { ngx_null_string, 0 }
};

#endif

static ngx_conf_post_handler_pt  ngx_bayeux_app_request_uri_p =
    ngx_bayeux_app_request_uri;
static ngx_conf_post_handler_pt  ngx_bayeux_presence_channel_p =
    ngx_bayeux_presence_channel;

static ngx_conf_post_handler_pt  ngx_bayeux_not_empty_p =
    ngx_bayeux_not_empty;

static ngx_conf_enum_t  ngx_bayeux_samesite[] = {
    { ngx_string("off"), NGX_BAYEUX_SAMESITE_OFF },
    { ngx_string("strict"), NGX_BAYEUX_SAMESITE_STRICT },
    { ngx_string("lax"), NGX_BAYEUX_SAMESITE_LAX },
    { ngx_string("none"), NGX_BAYEUX_SAMESITE_NONE },
    { ngx_null_string, 0 }
};

static ngx_conf_enum_t  ngx_bayeux_activities[] = {
    { ngx_string("client"), NGX_BAYEUX_ACTIVITY_CLIENT },
    { ngx_string("client_server"), NGX_BAYEUX_ACTIVITY_CLIENT_SERVER },
    { ngx_null_string, 0 }
};

/* unlike ngx_conf_check_num_bounds(), the message names the directive */

static ngx_conf_num_bounds_t  ngx_bayeux_max_batch_bounds = {
    ngx_bayeux_bounds, 1, 1000000
};

static ngx_conf_num_bounds_t  ngx_bayeux_max_channels_bounds = {
    ngx_bayeux_bounds, 1, 1000000
};

static ngx_conf_num_bounds_t  ngx_bayeux_max_subscriptions_bounds = {
    ngx_bayeux_bounds, 1, 100000000
};

static ngx_conf_num_bounds_t  ngx_bayeux_max_sessions_bounds = {
    ngx_bayeux_bounds, 0, 1000
};

static ngx_conf_num_bounds_t  ngx_bayeux_websocket_max_message_bounds = {
    ngx_bayeux_bounds, 125, 64 * 1024 * 1024
};

static ngx_conf_num_bounds_t  ngx_bayeux_websocket_max_output_bounds = {
    ngx_bayeux_bounds, 1024, 1024 * 1024 * 1024
};

static ngx_conf_num_bounds_t  ngx_bayeux_redis_shards_bounds = {
    ngx_bayeux_bounds, 1, 64
};

static ngx_conf_num_bounds_t  ngx_bayeux_max_queue_bounds = {
    ngx_bayeux_bounds, 0, 100000000
};


static ngx_command_t  ngx_bayeux_commands[] = {

    { ngx_string("bayeux"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_bayeux,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_engine"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_bayeux_engine,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, timeout),
      NULL },

    { ngx_string("bayeux_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, interval),
      NULL },

    { ngx_string("bayeux_max_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_interval),
      &ngx_bayeux_positive_msec_p },

    { ngx_string("bayeux_max_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_queue),
      &ngx_bayeux_max_queue_bounds },

    { ngx_string("bayeux_max_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_queue_size),
      NULL },

    { ngx_string("bayeux_timestamp"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, timestamp),
      NULL },

    { ngx_string("bayeux_ack"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, ack),
      NULL },

    { ngx_string("bayeux_max_inactivity"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_bayeux_max_inactivity,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_max_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_batch),
      &ngx_bayeux_max_batch_bounds },

    { ngx_string("bayeux_max_channels"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_channels),
      &ngx_bayeux_max_channels_bounds },

    { ngx_string("bayeux_max_subscriptions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_subscriptions),
      &ngx_bayeux_max_subscriptions_bounds },

    { ngx_string("bayeux_transports"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_bayeux_transports,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, transports),
      ngx_bayeux_transport_masks },

    { ngx_string("bayeux_max_sessions_per_browser"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_sessions_per_browser),
      &ngx_bayeux_max_sessions_bounds },

    { ngx_string("bayeux_multi_session_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, multi_session_interval),
      NULL },

    { ngx_string("bayeux_allow_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_bayeux_allow_origin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_allow_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, allow_credentials),
      NULL },

    { ngx_string("bayeux_trust_client_session"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, trust_client_session),
      NULL },

    { ngx_string("bayeux_browser_cookie_secure"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, browser_cookie_secure),
      NULL },

    { ngx_string("bayeux_browser_cookie_samesite"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_bayeux_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, browser_cookie_samesite),
      ngx_bayeux_samesite },

    { ngx_string("bayeux_browser_cookie_partitioned"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, browser_cookie_partitioned),
      NULL },

    { ngx_string("bayeux_websocket_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, websocket_max_message),
      &ngx_bayeux_websocket_max_message_bounds },

    { ngx_string("bayeux_websocket_max_output"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, websocket_max_output),
      &ngx_bayeux_websocket_max_output_bounds },

    { ngx_string("bayeux_websocket_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, websocket_log),
      NULL },

    { ngx_string("bayeux_websocket_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, websocket_idle_timeout),
      &ngx_bayeux_positive_msec_p },

    { ngx_string("bayeux_websocket_protocol"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, websocket_protocol),
      NULL },

    { ngx_string("bayeux_broadcast_to_publisher"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, broadcast_to_publisher),
      NULL },

    { ngx_string("bayeux_redis_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_url),
      &ngx_bayeux_redis_url_p },

    { ngx_string("bayeux_redis_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_prefix),
      &ngx_bayeux_not_empty_p },

    { ngx_string("bayeux_redis_shards"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_shards),
      &ngx_bayeux_redis_shards_bounds },

    { ngx_string("bayeux_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_connect_timeout),
      &ngx_bayeux_positive_msec_p },

    { ngx_string("bayeux_redis_command_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_command_timeout),
      &ngx_bayeux_positive_msec_p },

    { ngx_string("bayeux_redis_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_certificate),
      NULL },

    { ngx_string("bayeux_redis_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_certificate_key),
      NULL },

    { ngx_string("bayeux_redis_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_trusted_certificate),
      NULL },

    { ngx_string("bayeux_redis_ssl_ciphers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_ciphers),
      NULL },

    { ngx_string("bayeux_redis_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_name),
      &ngx_bayeux_not_empty_p },

    { ngx_string("bayeux_redis_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_verify),
      NULL },

    { ngx_string("bayeux_redis_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_verify_depth),
      NULL },

    { ngx_string("bayeux_redis_ssl_server_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_server_name),
      NULL },

#if (NGX_SSL)

    { ngx_string("bayeux_redis_ssl_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, redis_ssl_protocols),
      &ngx_bayeux_redis_ssl_protocols },

#endif

    { ngx_string("bayeux_handshake_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, handshake_request),
      &ngx_bayeux_app_request_uri_p },

    { ngx_string("bayeux_subscribe_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, subscribe_request),
      &ngx_bayeux_app_request_uri_p },

    { ngx_string("bayeux_publish_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, publish_request),
      &ngx_bayeux_app_request_uri_p },

    { ngx_string("bayeux_service_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, service_request),
      &ngx_bayeux_app_request_uri_p },

    { ngx_string("bayeux_disconnect_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, disconnect_request),
      &ngx_bayeux_app_request_uri_p },

    { ngx_string("bayeux_presence_channel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, presence_channel),
      &ngx_bayeux_presence_channel_p },

    { ngx_string("bayeux_lazy_channel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_bayeux_lazy_channel_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_max_lazy_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_bayeux_loc_conf_t, max_lazy_timeout),
      &ngx_bayeux_positive_msec_p },

    { ngx_string("bayeux_publisher"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_bayeux_publisher_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_jwt_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_bayeux_jwt_key_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bayeux_status"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_bayeux_status_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_bayeux_module_ctx = {
    ngx_bayeux_preconfiguration,           /* preconfiguration */
    ngx_bayeux_postconfiguration,          /* postconfiguration */

    ngx_bayeux_create_main_conf,           /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_bayeux_create_loc_conf,            /* create location configuration */
    ngx_bayeux_merge_loc_conf              /* merge location configuration */
};


ngx_module_t  ngx_bayeux_module = {
    NGX_MODULE_V1,
    &ngx_bayeux_module_ctx,                /* module context */
    ngx_bayeux_commands,                   /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_bayeux_init_module,                /* init module */
    ngx_bayeux_init_process,               /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_bayeux_exit_process,               /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the values of bayeux_transports come from the transports' table */

static ngx_int_t
ngx_bayeux_preconfiguration(ngx_conf_t *cf)
{
    ngx_bayeux_http_init_transports();

    return ngx_bayeux_variables_add(cf);
}


/*
 * every location is known: bayeux_publisher finds its endpoint, and the
 * counters' shared memory is added
 */

static ngx_int_t
ngx_bayeux_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_bayeux_publisher_resolve(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_bayeux_status_init(cf);
}


static void *
ngx_bayeux_create_main_conf(ngx_conf_t *cf)
{
    ngx_bayeux_main_conf_t  *bmcf;

    bmcf = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_main_conf_t));
    if (bmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&bmcf->endpoints, cf->pool, 2,
                       sizeof(ngx_bayeux_endpoint_t *))
        != NGX_OK
        || ngx_array_init(&bmcf->publishers, cf->pool, 1,
                          sizeof(ngx_bayeux_loc_conf_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return bmcf;
}


static void *
ngx_bayeux_create_loc_conf(ngx_conf_t *cf)
{
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_loc_conf_t));
    if (blcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     blcf->enable = 0;
     *     blcf->endpoint = NULL;
     *     blcf->engine = NULL;
     */

    blcf->timeout = NGX_CONF_UNSET_MSEC;
    blcf->interval = NGX_CONF_UNSET_MSEC;
    blcf->max_interval = NGX_CONF_UNSET_MSEC;
    blcf->max_queue = NGX_CONF_UNSET_UINT;
    blcf->max_queue_size = NGX_CONF_UNSET_SIZE;
    blcf->timestamp = NGX_CONF_UNSET;
    blcf->ack = NGX_CONF_UNSET;
    blcf->max_inactivity = NGX_CONF_UNSET_MSEC;
    blcf->activity = NGX_CONF_UNSET_UINT;
    blcf->max_batch = NGX_CONF_UNSET_UINT;
    blcf->max_channels = NGX_CONF_UNSET_UINT;
    blcf->max_subscriptions = NGX_CONF_UNSET_UINT;
    blcf->broadcast_to_publisher = NGX_CONF_UNSET;
    blcf->max_sessions_per_browser = NGX_CONF_UNSET_UINT;
    blcf->multi_session_interval = NGX_CONF_UNSET_MSEC;
    blcf->allow_origin = NGX_CONF_UNSET_PTR;
    blcf->lazy_channels = NGX_CONF_UNSET_PTR;
    blcf->max_lazy_timeout = NGX_CONF_UNSET_MSEC;
    blcf->allow_credentials = NGX_CONF_UNSET;
    blcf->trust_client_session = NGX_CONF_UNSET;
    blcf->browser_cookie_secure = NGX_CONF_UNSET;
    blcf->browser_cookie_samesite = NGX_CONF_UNSET_UINT;
    blcf->browser_cookie_partitioned = NGX_CONF_UNSET;
    blcf->websocket_max_message = NGX_CONF_UNSET_SIZE;
    blcf->websocket_max_output = NGX_CONF_UNSET_SIZE;
    blcf->websocket_idle_timeout = NGX_CONF_UNSET_MSEC;
    blcf->websocket_log = NGX_CONF_UNSET;
    blcf->redis_shards = NGX_CONF_UNSET_UINT;
    blcf->redis_connect_timeout = NGX_CONF_UNSET_MSEC;
    blcf->redis_command_timeout = NGX_CONF_UNSET_MSEC;
    blcf->redis_ssl_verify = NGX_CONF_UNSET;
    blcf->redis_ssl_verify_depth = NGX_CONF_UNSET_UINT;
    blcf->redis_ssl_server_name = NGX_CONF_UNSET;
    blcf->jwt_key = NGX_CONF_UNSET_PTR;

    return blcf;
}


static char *
ngx_bayeux_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_bayeux_loc_conf_t *prev = parent;
    ngx_bayeux_loc_conf_t *conf = child;

    ngx_str_t  name;

    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 30000);
    ngx_conf_merge_msec_value(conf->interval, prev->interval, 0);
    ngx_conf_merge_msec_value(conf->max_interval, prev->max_interval, 10000);
    ngx_conf_merge_uint_value(conf->max_queue, prev->max_queue, 10000);
    ngx_conf_merge_size_value(conf->max_queue_size, prev->max_queue_size,
                              8 * 1024 * 1024);
    ngx_conf_merge_value(conf->timestamp, prev->timestamp, 0);
    ngx_conf_merge_value(conf->ack, prev->ack, 1);
    ngx_conf_merge_msec_value(conf->max_inactivity, prev->max_inactivity, 0);
    ngx_conf_merge_uint_value(conf->activity, prev->activity,
                              NGX_BAYEUX_ACTIVITY_CLIENT);
    ngx_conf_merge_uint_value(conf->max_batch, prev->max_batch, 1000);
    ngx_conf_merge_uint_value(conf->max_channels, prev->max_channels, 100);
    ngx_conf_merge_uint_value(conf->max_subscriptions,
                              prev->max_subscriptions, 1000);
    ngx_conf_merge_value(conf->broadcast_to_publisher,
                         prev->broadcast_to_publisher, 1);

    ngx_conf_merge_bitmask_value(conf->transports, prev->transports,
                                 (NGX_BAYEUX_TRANSPORT_WEBSOCKET
                                  |NGX_BAYEUX_TRANSPORT_LONG_POLLING
                                  |NGX_BAYEUX_TRANSPORT_CALLBACK_POLLING));

    ngx_conf_merge_uint_value(conf->max_sessions_per_browser,
                              prev->max_sessions_per_browser, 1);
    ngx_conf_merge_msec_value(conf->multi_session_interval,
                              prev->multi_session_interval, 2000);
    ngx_conf_merge_ptr_value(conf->allow_origin, prev->allow_origin, NULL);
    ngx_conf_merge_value(conf->allow_credentials, prev->allow_credentials, 0);
    ngx_conf_merge_value(conf->trust_client_session,
                         prev->trust_client_session, 0);
    ngx_conf_merge_value(conf->browser_cookie_secure,
                         prev->browser_cookie_secure, 0);
    ngx_conf_merge_uint_value(conf->browser_cookie_samesite,
                              prev->browser_cookie_samesite,
                              NGX_BAYEUX_SAMESITE_OFF);
    ngx_conf_merge_value(conf->browser_cookie_partitioned,
                         prev->browser_cookie_partitioned, 0);

    /* browsers drop such cookies: checked merged, as set at any level */

    if (conf->endpoint && !conf->browser_cookie_secure) {

        if (conf->browser_cookie_samesite == NGX_BAYEUX_SAMESITE_NONE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"bayeux_browser_cookie_samesite none\" "
                               "requires \"bayeux_browser_cookie_secure "
                               "on\" in location \"%V\": browsers refuse "
                               "a SameSite=None cookie without Secure",
                               &conf->endpoint->name);
            return NGX_CONF_ERROR;
        }

        if (conf->browser_cookie_partitioned) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"bayeux_browser_cookie_partitioned on\" "
                               "requires \"bayeux_browser_cookie_secure "
                               "on\" in location \"%V\": browsers refuse "
                               "a Partitioned cookie without Secure",
                               &conf->endpoint->name);
            return NGX_CONF_ERROR;
        }
    }

    /* checked merged: the two may be set at different levels */

    if (conf->endpoint
        && conf->allow_credentials
        && ngx_bayeux_allow_origin_any(conf->allow_origin))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_allow_origin *\" cannot be used with "
                           "\"bayeux_allow_credentials on\" in location "
                           "\"%V\": browsers refuse credentials for any "
                           "origin; list the origins instead",
                           &conf->endpoint->name);
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_size_value(conf->websocket_max_message,
                              prev->websocket_max_message, 65536);
    ngx_conf_merge_size_value(conf->websocket_max_output,
                              prev->websocket_max_output, 1024 * 1024);

    /*
     * unset, the idle timeout follows bayeux_timeout: a client's next
     * connect comes within timeout + interval, plus the network's delay
     */

    if (conf->websocket_idle_timeout == NGX_CONF_UNSET_MSEC
        && (prev->websocket_idle_timeout == NGX_CONF_UNSET_MSEC
            || prev->websocket_idle_timeout_auto))
    {
        conf->websocket_idle_timeout_auto = 1;
        conf->websocket_idle_timeout = ngx_max(60000, conf->timeout
                                                      + conf->interval
                                                      + 30000);
    }

    ngx_conf_merge_value(conf->websocket_log, prev->websocket_log, 0);
    ngx_conf_merge_msec_value(conf->websocket_idle_timeout,
                              prev->websocket_idle_timeout, 60000);
    ngx_conf_merge_str_value(conf->websocket_protocol,
                             prev->websocket_protocol, "");

    if (conf->endpoint
        && !conf->websocket_idle_timeout_auto
        && conf->websocket_idle_timeout <= conf->timeout)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_websocket_idle_timeout\" (%Mms) must be "
                           "longer than \"bayeux_timeout\" (%Mms): a held "
                           "connect is a websocket's only traffic",
                           conf->websocket_idle_timeout, conf->timeout);
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_str_value(conf->redis_url, prev->redis_url,
                             NGX_BAYEUX_REDIS_DEFAULT_URL);
    ngx_conf_merge_str_value(conf->redis_prefix, prev->redis_prefix,
                             NGX_BAYEUX_REDIS_DEFAULT_PREFIX);
    ngx_conf_merge_uint_value(conf->redis_shards, prev->redis_shards, 1);
    ngx_conf_merge_msec_value(conf->redis_connect_timeout,
                              prev->redis_connect_timeout, 1000);
    ngx_conf_merge_msec_value(conf->redis_command_timeout,
                              prev->redis_command_timeout, 3000);
    ngx_conf_merge_str_value(conf->redis_ssl_certificate,
                             prev->redis_ssl_certificate, "");
    ngx_conf_merge_str_value(conf->redis_ssl_certificate_key,
                             prev->redis_ssl_certificate_key, "");
    ngx_conf_merge_str_value(conf->redis_ssl_trusted_certificate,
                             prev->redis_ssl_trusted_certificate, "");
    ngx_conf_merge_str_value(conf->redis_ssl_ciphers,
                             prev->redis_ssl_ciphers, "DEFAULT");
    ngx_conf_merge_str_value(conf->redis_ssl_name, prev->redis_ssl_name, "");
    ngx_conf_merge_value(conf->redis_ssl_verify, prev->redis_ssl_verify, 0);
    ngx_conf_merge_uint_value(conf->redis_ssl_verify_depth,
                              prev->redis_ssl_verify_depth, 1);
    ngx_conf_merge_value(conf->redis_ssl_server_name,
                         prev->redis_ssl_server_name, 0);
#if (NGX_SSL)
    ngx_conf_merge_bitmask_value(conf->redis_ssl_protocols,
                                 prev->redis_ssl_protocols,
                                 (NGX_CONF_BITMASK_SET|NGX_SSL_TLSv1_2
                                  |NGX_SSL_TLSv1_3));
#endif
    ngx_conf_merge_str_value(conf->handshake_request,
                             prev->handshake_request, "");
    ngx_conf_merge_str_value(conf->subscribe_request,
                             prev->subscribe_request, "");
    ngx_conf_merge_str_value(conf->publish_request,
                             prev->publish_request, "");
    ngx_conf_merge_str_value(conf->service_request,
                             prev->service_request, "");
    ngx_conf_merge_str_value(conf->disconnect_request,
                             prev->disconnect_request, "");
    ngx_conf_merge_str_value(conf->presence_channel,
                             prev->presence_channel, "");
    ngx_conf_merge_ptr_value(conf->lazy_channels, prev->lazy_channels, NULL);
    ngx_conf_merge_msec_value(conf->max_lazy_timeout,
                              prev->max_lazy_timeout, 5000);
    ngx_conf_merge_ptr_value(conf->jwt_key, prev->jwt_key, NULL);

    if (conf->engine == NULL) {
        conf->engine = prev->engine;
    }

    if (conf->engine == NULL) {
        ngx_str_set(&name, "memory");
        conf->engine = ngx_bayeux_engine_find(&name);
    }

    if (conf->endpoint == NULL) {
        return NGX_CONF_OK;
    }

    /* the location that has "bayeux" */

    if (ngx_bayeux_check_location(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    conf->endpoint->conf = conf;
    conf->endpoint->engine = conf->engine;

    if (conf->engine->init_endpoint(cf, conf->endpoint) != NGX_OK
        || ngx_bayeux_protocol_init_endpoint(cf, conf->endpoint,
                                             ngx_bayeux_transport_masks)
           != NGX_OK
        || ngx_bayeux_app_init_endpoint(cf, conf->endpoint) != NGX_OK
        || ngx_bayeux_notices_init_endpoint(cf, conf->endpoint) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_bayeux(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    ngx_bayeux_endpoint_t     **ep;
    ngx_bayeux_main_conf_t     *bmcf;
    ngx_http_core_loc_conf_t   *clcf;

    if (blcf->endpoint) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "conflicts with another content handler in this location";
    }

    /* a client appends /handshake, /connect, ... to the endpoint's URL */

    if (clcf->exact_match) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"bayeux\" in the exact location \"= %V\": "
                           "CometD clients post to \"%V/handshake\", "
                           "\"%V/connect\", ..., which it does not match; "
                           "use a prefix location, \"location %V\"",
                           &clcf->name, &clcf->name, &clcf->name,
                           &clcf->name);
    }

    clcf->handler = ngx_bayeux_http_handler;

    blcf->enable = 1;

    blcf->endpoint = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_endpoint_t));
    if (blcf->endpoint == NULL) {
        return NGX_CONF_ERROR;
    }

    blcf->endpoint->name = clcf->name;
    blcf->endpoint->conf_ctx = cf->ctx;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_bayeux_module);

    ep = ngx_array_push(&bmcf->endpoints);
    if (ep == NULL) {
        return NGX_CONF_ERROR;
    }

    *ep = blcf->endpoint;

    return NGX_CONF_OK;
}


static char *
ngx_bayeux_engine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    ngx_str_t  *value;

    if (blcf->engine) {
        return "is duplicate";
    }

    value = cf->args->elts;

    blcf->engine = ngx_bayeux_engine_find(&value[1]);

    if (blcf->engine == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown bayeux engine \"%V\"; "
                           "this build has: memory, redis", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_bayeux_positive_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    if (*ms == 0) {
        return "must be greater than 0";
    }

    return NGX_CONF_OK;
}


/*
 * bayeux_max_inactivity time|off [client|client_server]: a period, and
 * what counts as activity (CometD's ActivityExtension.Activity)
 */

static char *
ngx_bayeux_max_inactivity(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    ngx_str_t        *value;
    ngx_msec_t        ms;
    ngx_conf_enum_t  *e;

    if (blcf->max_inactivity != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" has nothing to count when \"off\"",
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        blcf->max_inactivity = 0;
        blcf->activity = NGX_BAYEUX_ACTIVITY_CLIENT;
        return NGX_CONF_OK;
    }

    ms = ngx_parse_time(&value[1], 0);

    if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\": a period "
                           "greater than 0, or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    blcf->max_inactivity = ms;
    blcf->activity = NGX_BAYEUX_ACTIVITY_CLIENT;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    for (e = ngx_bayeux_activities; e->name.len; e++) {
        if (e->name.len == value[2].len
            && ngx_strcmp(e->name.data, value[2].data) == 0)
        {
            blcf->activity = e->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\": \"client\" or "
                       "\"client_server\"", &value[2], &cmd->name);

    return NGX_CONF_ERROR;
}


static char *
ngx_bayeux_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_uint_t             *np = data;

    u_char  *msg, *last;

    if ((ngx_int_t) *np >= bounds->low && (ngx_int_t) *np <= bounds->high) {
        return NGX_CONF_OK;
    }

    msg = ngx_pnalloc(cf->pool, 64);
    if (msg == NULL) {
        return NGX_CONF_ERROR;
    }

    last = ngx_snprintf(msg, 63, "must be between %i and %i",
                        bounds->low, bounds->high);
    *last = '\0';

    return (char *) msg;
}


/*
 * ngx_conf_set_bitmask_slot() with the transports' table, but a repeated
 * directive is refused, and an unknown name is told with the known ones
 * (nginx says only "invalid value"); names are exact, as clients send
 * them.
 */

static char *
ngx_bayeux_transports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    u_char              *p, *last, known[NGX_MAX_CONF_ERRSTR];
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_conf_bitmask_t  *mask;

    if (blcf->transports) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        for (mask = cmd->post; mask->name.len; mask++) {
            if (mask->name.len == value[i].len
                && ngx_strncmp(mask->name.data, value[i].data,
                               value[i].len)
                   == 0)
            {
                break;
            }
        }

        if (mask->name.len == 0) {
            goto unknown;
        }
    }

    return ngx_conf_set_bitmask_slot(cf, cmd, conf);

unknown:

    p = known;
    last = known + sizeof(known);

    for (mask = cmd->post; mask->name.len; mask++) {
        p = ngx_slprintf(p, last, "%s%V", p == known ? "" : ", ",
                         &mask->name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown bayeux transport \"%V\"; known: %*s",
                       &value[i], p - known, known);

    return NGX_CONF_ERROR;
}


static char *
ngx_bayeux_allow_origin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value, *origin;
    ngx_uint_t   i;

    if (blcf->allow_origin != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    blcf->allow_origin = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_str_t));
    if (blcf->allow_origin == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 1 && value[i].data[0] == '*') {
            goto add;
        }

        /*
         * a browser's Origin is "scheme://host[:port]" and nothing more:
         * a value with a path, even "/", never matches one
         */

        p = value[i].data;
        last = p + value[i].len;

        while (p < last && *p != ':') {
            if (*p == '/' || *p == '?' || *p == '#') {
                break;
            }

            p++;
        }

        if (p == value[i].data || last - p < 4
            || ngx_strncmp(p, "://", 3) != 0)
        {
            goto invalid;
        }

        for (p += 3; p < last; p++) {
            if (*p == '/' || *p == '?' || *p == '#') {
                goto invalid;
            }
        }

    add:

        origin = ngx_array_push(blcf->allow_origin);
        if (origin == NULL) {
            return NGX_CONF_ERROR;
        }

        *origin = value[i];
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid origin \"%V\" in \"bayeux_allow_origin\": "
                       "an origin is \"*\" or \"scheme://host[:port]\", "
                       "without a path, as browsers send it in their Origin "
                       "header (\"https://example.com\", not "
                       "\"https://example.com/\")", &value[i]);

    return NGX_CONF_ERROR;
}


static ngx_uint_t
ngx_bayeux_allow_origin_any(ngx_array_t *origins)
{
    ngx_str_t   *origin;
    ngx_uint_t   i;

    if (origins == NULL) {
        return 0;
    }

    origin = origins->elts;

    for (i = 0; i < origins->nelts; i++) {
        if (origin[i].len == 1 && origin[i].data[0] == '*') {
            return 1;
        }
    }

    return 0;
}


/*
 * ngx_conf_set_enum_slot(), but an unknown value is told with the
 * directive's name and the known values
 */

static char *
ngx_bayeux_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char           *p, *last, known[NGX_MAX_CONF_ERRSTR];
    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;

    for (e = cmd->post; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcasecmp(e->name.data, value[1].data) == 0)
        {
            return ngx_conf_set_enum_slot(cf, cmd, conf);
        }
    }

    p = known;
    last = known + sizeof(known);

    for (e = cmd->post; e->name.len; e++) {
        p = ngx_slprintf(p, last, "%s%V", p == known ? "" : ", ", &e->name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\"; known: %*s",
                       &value[1], &cmd->name, p - known, known);

    return NGX_CONF_ERROR;
}


static char *
ngx_bayeux_not_empty(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *value = data;

    if (value->len == 0) {
        return "must not be empty";
    }

    return NGX_CONF_OK;
}


/*
 * What else in the location of "bayeux" would answer its requests
 * instead, silently: a content handler set after "bayeux" (proxy_pass,
 * fastcgi_pass, ...: one set before is refused by "bayeux" itself), and
 * a "return" of the rewrite module, which answers before any content
 * handler runs.  Called from the merge, when the location's whole
 * configuration is known and cf->ctx is that location's.
 */

static char *
ngx_bayeux_check_location(ngx_conf_t *cf, ngx_bayeux_loc_conf_t *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != ngx_bayeux_http_handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux\" in location \"%V\" conflicts with "
                           "another content handler in this location "
                           "(proxy_pass, fastcgi_pass, uwsgi_pass, "
                           "scgi_pass, grpc_pass, memcached_pass, ...), "
                           "which would answer instead: move it to a "
                           "location of its own", &conf->endpoint->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_bayeux_location_returns(cf)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux\" in location \"%V\" never runs: "
                           "\"return\" in the same location answers every "
                           "request first; move \"return\" to another "
                           "location, or put it inside an \"if\"",
                           &conf->endpoint->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Whether the location's rewrite code has a "return" outside any "if".
 * The rewrite module's configuration is its own, but its first member,
 * since nginx 0.x, is the array of the location's code: words, where
 * each code begins with its function.  An "if" code, followed by its
 * offset to the end of its block, is skipped with its block.  The module
 * is looked up by name: a static nginx may be built without it.
 */

static ngx_uint_t
ngx_bayeux_location_returns(ngx_conf_t *cf)
{
    void                 *rlcf;
    uintptr_t            *code;
    ngx_uint_t            i, n, m, next;
    ngx_array_t          *codes;
    ngx_module_t         *module;
    ngx_http_conf_ctx_t  *ctx;

    module = NULL;

    for (m = 0; cf->cycle->modules[m]; m++) {
        if (ngx_strcmp(cf->cycle->modules[m]->name,
                       "ngx_http_rewrite_module")
            == 0)
        {
            module = cf->cycle->modules[m];
            break;
        }
    }

    if (module == NULL || module->type != NGX_HTTP_MODULE) {
        return 0;
    }

    ctx = cf->ctx;
    rlcf = ctx->loc_conf[module->ctx_index];

    if (rlcf == NULL) {
        return 0;
    }

    codes = *(ngx_array_t **) rlcf;

    if (codes == NULL) {
        return 0;
    }

    code = codes->elts;
    n = codes->nelts * codes->size / sizeof(uintptr_t);

    for (i = 0; i < n; /* void */) {

        if (code[i] == (uintptr_t) ngx_http_script_return_code) {
            return 1;
        }

        if (code[i] == (uintptr_t) ngx_http_script_if_code && i + 1 < n) {
            next = ((ngx_http_script_if_code_t *) &code[i])->next
                   / sizeof(uintptr_t);
            i += ngx_max(next, 1);
            continue;
        }

        i++;
    }

    return 0;
}


/* NULL when the configuration has no http block */

static ngx_bayeux_main_conf_t *
ngx_bayeux_cycle_main_conf(ngx_cycle_t *cycle)
{
    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NULL;
    }

    return ngx_http_cycle_get_module_main_conf(cycle, ngx_bayeux_module);
}


/*
 * The memory engine keeps state in one process; several workers would
 * each see a different server.  Checked here, once the whole
 * configuration, worker_processes included, is known.  A configuration
 * with bayeux locations also logs the module's version here, at start
 * and at each reload: nginx -V cannot show a dynamic module's.
 */

static ngx_int_t
ngx_bayeux_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                i;
    ngx_core_conf_t          *ccf;
    ngx_bayeux_endpoint_t   **ep;
    ngx_bayeux_main_conf_t   *bmcf;

    bmcf = ngx_bayeux_cycle_main_conf(cycle);
    if (bmcf == NULL || bmcf->endpoints.nelts == 0) {
        return NGX_OK;
    }

    if (!ngx_test_config) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "ngx_bayeux_module/" NGX_BAYEUX_VERSION
                      " (Bayeux " NGX_BAYEUX_PROTOCOL_VERSION "), "
                      "%ui bayeux location%s",
                      bmcf->endpoints.nelts,
                      bmcf->endpoints.nelts == 1 ? "" : "s");
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (!ccf->master || ccf->worker_processes <= 1) {
        return NGX_OK;
    }

    ep = bmcf->endpoints.elts;

    for (i = 0; i < bmcf->endpoints.nelts; i++) {
        if (!ep[i]->engine->multi_worker) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "bayeux_engine %V in location \"%V\" keeps its "
                          "state in one worker process, but "
                          "worker_processes is %i: use \"worker_processes "
                          "1;\" or the Redis engine (\"bayeux_engine "
                          "redis;\")",
                          &ep[i]->engine->name, &ep[i]->name,
                          ccf->worker_processes);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                i;
    ngx_bayeux_endpoint_t   **ep;
    ngx_bayeux_main_conf_t   *bmcf;

    bmcf = ngx_bayeux_cycle_main_conf(cycle);
    if (bmcf == NULL) {
        return NGX_OK;
    }

    ep = bmcf->endpoints.elts;

    for (i = 0; i < bmcf->endpoints.nelts; i++) {
        if (ep[i]->engine->init_process(cycle, ep[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_bayeux_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                i;
    ngx_bayeux_endpoint_t   **ep;
    ngx_bayeux_main_conf_t   *bmcf;

    bmcf = ngx_bayeux_cycle_main_conf(cycle);
    if (bmcf == NULL) {
        return;
    }

    ep = bmcf->endpoints.elts;

    for (i = 0; i < bmcf->endpoints.nelts; i++) {
        ep[i]->engine->exit_process(cycle, ep[i]);
    }
}
