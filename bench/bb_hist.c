
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include "bb.h"


/*
 * Values below BB_HIST_SUB have a bucket each; above, every power of two
 * is split in BB_HIST_SUB / 2 buckets, so that a bucket is at most
 * 1/64 of its value wide.
 */

static size_t
bb_hist_index(uint64_t v)
{
    unsigned  msb, shift;

    if (v < BB_HIST_SUB) {
        return (size_t) v;
    }

    msb = 63 - __builtin_clzll(v);
    shift = msb - 6;

    return BB_HIST_SUB + (size_t) (shift - 1) * (BB_HIST_SUB / 2)
           + (size_t) ((v >> shift) - BB_HIST_SUB / 2);
}


/* the middle of a bucket */

static uint64_t
bb_hist_value(size_t i)
{
    size_t    k;
    unsigned  shift;
    uint64_t  sub;

    if (i < BB_HIST_SUB) {
        return i;
    }

    k = i - BB_HIST_SUB;
    shift = (unsigned) (k / (BB_HIST_SUB / 2)) + 1;
    sub = k % (BB_HIST_SUB / 2) + BB_HIST_SUB / 2;

    return (sub << shift) + ((1ULL << shift) >> 1);
}


void
bb_hist_add(bb_hist_t *h, uint64_t v)
{
    h->count[bb_hist_index(v)]++;
    h->total++;

    if (v > h->max) {
        h->max = v;
    }
}


/* the value below which a fraction "p" of the samples lie */

uint64_t
bb_hist_percentile(bb_hist_t *h, double p)
{
    size_t    i;
    uint64_t  want, seen, v;

    if (h->total == 0) {
        return 0;
    }

    want = (uint64_t) (p * (double) h->total + 0.5);

    if (want == 0) {
        want = 1;
    }

    seen = 0;

    for (i = 0; i < BB_HIST_BUCKETS; i++) {
        seen += h->count[i];

        if (seen >= want) {
            v = bb_hist_value(i);
            return v < h->max ? v : h->max;
        }
    }

    return h->max;
}
