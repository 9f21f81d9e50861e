
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_ws_frame.h"


/*
 * The RFC 6455 frame codec: the header of a received frame read and
 * checked, its payload unmasked, a close frame's status read, and the
 * header and close payload of a frame to send built.  It keeps no state:
 * what a check needs of the connection (is a fragmented message under
 * way?) is passed in, and the transport's own limits (message size,
 * binary messages) are the websocket's to check.
 */


typedef struct {
    ngx_uint_t                     first;
    ngx_uint_t                     last;
} ngx_bayeux_ws_range_t;


/* the opcodes RFC 6455 defines, one bit each */

static ngx_uint_t  ngx_bayeux_ws_opcodes =
      1 << NGX_BAYEUX_WS_CONTINUATION
    | 1 << NGX_BAYEUX_WS_TEXT
    | 1 << NGX_BAYEUX_WS_BINARY
    | 1 << NGX_BAYEUX_WS_CLOSE
    | 1 << NGX_BAYEUX_WS_PING
    | 1 << NGX_BAYEUX_WS_PONG;


/*
 * the status codes a client may send in a close frame: those RFC 6455
 * defines for use in a frame, those IANA registers, and private ones
 */

static ngx_bayeux_ws_range_t  ngx_bayeux_ws_close_codes[] = {
    { 1000, 1003 },
    { 1007, 1014 },
    { 3000, 4999 },
};


/*
 * Reads the header of a client's frame at "p".  NGX_OK: "f" describes
 * it (the payload may not all be there yet: f->header + f->len bytes
 * make the frame); NGX_AGAIN: the header is not complete; NGX_ERROR: a
 * frame RFC 6455 forbids, f->code and f->reason say how to close.
 * "in_message": a fragmented message is under way.
 */

ngx_int_t
ngx_bayeux_ws_frame_parse(ngx_bayeux_ws_frame_t *f, u_char *p, size_t avail,
    ngx_uint_t in_message)
{
    size_t      header;
    uint64_t    len;
    ngx_uint_t  i, opcode;

    if (avail < 2) {
        return NGX_AGAIN;
    }

    f->fin = (p[0] & 0x80) ? 1 : 0;
    f->opcode = opcode = p[0] & 0x0f;

    f->code = NGX_BAYEUX_WS_PROTOCOL_ERROR;

    if (p[0] & 0x70) {
        f->reason = "reserved bits set";
        return NGX_ERROR;
    }

    if (!(p[1] & 0x80)) {
        f->reason = "client frames must be masked";
        return NGX_ERROR;
    }

    len = p[1] & 0x7f;
    header = 2;

    if (len == 126) {
        if (avail < 4) {
            return NGX_AGAIN;
        }

        len = ((uint64_t) p[2] << 8) | p[3];
        header = 4;

    } else if (len == 127) {
        if (avail < 10) {
            return NGX_AGAIN;
        }

        len = 0;

        for (i = 2; i < 10; i++) {
            len = (len << 8) | p[i];
        }

        header = 10;

        if (len >> 63) {
            f->reason = "invalid frame length";
            return NGX_ERROR;
        }
    }

    if (!(ngx_bayeux_ws_opcodes & (1 << opcode))) {
        f->reason = "unknown opcode";
        return NGX_ERROR;
    }

    if (ngx_bayeux_ws_is_control(opcode)) {

        if (!f->fin || len > NGX_BAYEUX_WS_MAX_CONTROL) {
            f->reason = "invalid control frame";
            return NGX_ERROR;
        }

    } else if (opcode == NGX_BAYEUX_WS_CONTINUATION) {

        if (!in_message) {
            f->reason = "continuation without a message";
            return NGX_ERROR;
        }

    } else if (in_message) {
        f->reason = "message interrupted";
        return NGX_ERROR;
    }

    f->len = len;
    f->mask = p + header;
    f->header = header + 4;

    return NGX_OK;
}


void
ngx_bayeux_ws_frame_unmask(ngx_bayeux_ws_frame_t *f, u_char *payload)
{
    uint64_t   i;
    u_char    *mask;

    mask = f->mask;

    for (i = 0; i < f->len; i++) {
        payload[i] ^= mask[i & 3];
    }
}


/*
 * The status of a received close frame ("normal" when it has none).
 * NGX_ERROR: a payload RFC 6455 forbids, f->code and f->reason say how
 * to close.
 */

ngx_int_t
ngx_bayeux_ws_frame_close_status(ngx_bayeux_ws_frame_t *f, u_char *payload,
    ngx_uint_t *status)
{
    ngx_uint_t  i, code;

    f->code = NGX_BAYEUX_WS_PROTOCOL_ERROR;

    if (f->len == 0) {
        *status = NGX_BAYEUX_WS_NORMAL;
        return NGX_OK;
    }

    if (f->len == 1) {
        f->reason = "invalid close frame";
        return NGX_ERROR;
    }

    code = (payload[0] << 8) | payload[1];

    for (i = 0; i < sizeof(ngx_bayeux_ws_close_codes)
                    / sizeof(ngx_bayeux_ws_range_t); i++)
    {
        if (code >= ngx_bayeux_ws_close_codes[i].first
            && code <= ngx_bayeux_ws_close_codes[i].last)
        {
            *status = code;
            return NGX_OK;
        }
    }

    f->reason = "invalid close code";
    return NGX_ERROR;
}


/*
 * The header of a final frame of "len" bytes, into "buf" of
 * NGX_BAYEUX_WS_MAX_HEADER bytes; returns its length.
 */

size_t
ngx_bayeux_ws_frame_header(u_char *buf, ngx_uint_t opcode, size_t len)
{
    u_char  *p;

    p = buf;

    *p++ = (u_char) (0x80 | opcode);

    if (len < 126) {
        *p++ = (u_char) len;

    } else if (len < 65536) {
        *p++ = 126;
        *p++ = (u_char) (len >> 8);
        *p++ = (u_char) len;

    } else {
        *p++ = 127;
        *p++ = 0;
        *p++ = 0;
        *p++ = 0;
        *p++ = 0;
        *p++ = (u_char) (len >> 24);
        *p++ = (u_char) (len >> 16);
        *p++ = (u_char) (len >> 8);
        *p++ = (u_char) len;
    }

    return p - buf;
}


/*
 * The payload of a close frame, into "buf" of NGX_BAYEUX_WS_MAX_CONTROL
 * bytes: the code, then what fits of the reason (may be NULL); returns
 * its length.
 */

size_t
ngx_bayeux_ws_frame_close_payload(u_char *buf, ngx_uint_t code,
    char *reason)
{
    size_t  len;

    buf[0] = (u_char) (code >> 8);
    buf[1] = (u_char) code;
    len = 2;

    if (reason) {
        len += ngx_min(ngx_strlen(reason), NGX_BAYEUX_WS_MAX_CONTROL - 2);
        ngx_memcpy(buf + 2, reason, len - 2);
    }

    return len;
}
