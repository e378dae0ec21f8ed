/*
 * TLMSP sequence numbers as the ETSI reference keeps them
 * (tlmsp-records.md 6): one 64-bit counter per entity, per hop and
 * direction, each a (value, pending) pair so that a delete indicator can
 * advance a counter ahead of the next item.
 */
#ifndef MSP_TLMSP_SEQ_H
#define MSP_TLMSP_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "msp/tlmsp.h"

typedef struct msp_tlmsp_counter {
    uint64_t value;
    uint64_t pending;
} msp_tlmsp_counter_t;

#define MSP_TLMSP_MAX_PATH (MSP_TLMSP_MAX_MIDDLEBOXES + 1)

/** The counters of one receiving-and-sending side of a hop (one SSL object in the reference). */
typedef struct msp_tlmsp_seq {
    uint8_t self;
    msp_tlmsp_counter_t tx;
    /* The entities this side receives from, neighbour first, peer endpoint last (6.4). */
    uint8_t path[MSP_TLMSP_MAX_PATH];
    msp_tlmsp_counter_t rx[MSP_TLMSP_MAX_PATH];
    size_t npath;
} msp_tlmsp_seq_t;

/** Sets up the counters, all reset; MSP_ERR_ARGUMENT for an empty or oversized path. */
int msp_tlmsp_seq_init(msp_tlmsp_seq_t *s, uint8_t self, const uint8_t *path, size_t npath);

/** Sending a ChangeCipherSpec resets our own counter; receiving one resets every path counter (6.5). */
void msp_tlmsp_seq_reset_tx(msp_tlmsp_seq_t *s);
void msp_tlmsp_seq_reset_rx(msp_tlmsp_seq_t *s);

/**
 * Transmit (6.3): the sequence number of the item being written. A
 * container that carries delete indicators passes their total count,
 * which advances the counter after the item.
 */
uint64_t msp_tlmsp_seq_tx(msp_tlmsp_seq_t *s, uint64_t deletes);

/** Receive a context-0 record (6.4): a normal step for every entity on the path. */
void msp_tlmsp_seq_rx_record(msp_tlmsp_seq_t *s);

/**
 * Receive a container (6.4): a normal step for the path up to and including
 * origin (M_INFO's m_id for inserted/deleted containers, else the peer),
 * then for each delete indicator a delete step up to and including its
 * source. m_info is the container's verbatim M_INFO or NULL. An entity not
 * on the path is MSP_ALERT_ILLEGAL_PARAMETER (the reference answers
 * internal_error), and then no counter has moved.
 */
int msp_tlmsp_seq_rx_container(msp_tlmsp_seq_t *s, uint8_t origin, const uint8_t *m_info, size_t m_info_len);

/** The current counter of entity id (our own for self); MSP_ALERT_ILLEGAL_PARAMETER if unknown. */
int msp_tlmsp_seq_of(const msp_tlmsp_seq_t *s, uint8_t id, uint64_t *value);

#endif
