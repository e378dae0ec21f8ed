/*
 * TLMSP sequence numbers (ETSI TS 103 523-2) as the reference keeps them. The write-up gives no clause numbers
 * of the standard for them; the bare section numbers below are tlmsp-records.md's (6).
 */
#include "tlmsp_seq.h"

#include <string.h>

#include "msp/error.h"

/* 6.2: the value is read after the normal step, so the first item after a reset uses 0. */
static void normal_step(msp_tlmsp_counter_t *c)
{
    c->value += c->pending;
    c->pending = 1;
}

/* 6.2 reset: value = 0, pending = 0. */
static void reset(msp_tlmsp_counter_t *c)
{
    c->value = 0;
    c->pending = 0;
}

/* One counter per entity on the receive path, plus our own transmit counter (6.1, 6.4). */
int msp_tlmsp_seq_init(msp_tlmsp_seq_t *s, uint8_t self, const uint8_t *path, size_t npath)
{
    if (npath == 0 || npath > MSP_TLMSP_MAX_PATH) {
        return MSP_ERR_ARGUMENT;
    }
    memset(s, 0, sizeof(*s));
    s->self = self;
    memcpy(s->path, path, npath);
    s->npath = npath;
    return MSP_OK;
}

/* 6.5: "on sending CCS the writer resets its own counter". */
void msp_tlmsp_seq_reset_tx(msp_tlmsp_seq_t *s)
{
    reset(&s->tx);
}

/* 6.5: "on receiving CCS the receiver resets the counters of every entity on path". */
void msp_tlmsp_seq_reset_rx(msp_tlmsp_seq_t *s)
{
    for (size_t i = 0; i < s->npath; i++) {
        reset(&s->rx[i]);
    }
}

/* Transmit side (6.3): one normal step per record or container written, then the delete step D. */
uint64_t msp_tlmsp_seq_tx(msp_tlmsp_seq_t *s, uint64_t deletes)
{
    normal_step(&s->tx);
    uint64_t v = s->tx.value;
    s->tx.pending += deletes; /* the delete step follows the item (6.3) */
    return v;
}

/* 6.4: "for each context-0 record: normal step for every entity on path". */
void msp_tlmsp_seq_rx_record(msp_tlmsp_seq_t *s)
{
    for (size_t i = 0; i < s->npath; i++) {
        normal_step(&s->rx[i]);
    }
}

/* Position of id on the path, or -1. */
static int position(const msp_tlmsp_seq_t *s, uint8_t id)
{
    for (size_t i = 0; i < s->npath; i++) {
        if (s->path[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

/* Checks every delete indicator's source before any counter moves, so a failure changes nothing. */
static int check_indicators(const msp_tlmsp_seq_t *s, const uint8_t *m_info, size_t len)
{
    if (m_info == NULL) {
        return MSP_OK;
    }
    if (len < 2 || len != 2 + (size_t)m_info[1] * 3) {
        return MSP_ALERT_DECODE_ERROR;
    }
    for (size_t i = 0; i < m_info[1]; i++) {
        if (position(s, m_info[2 + 3 * i]) < 0) {
            return MSP_ALERT_ILLEGAL_PARAMETER;
        }
    }
    return MSP_OK;
}

/*
 * 6.4 for a container: a normal step for every entity on path up to the origin (an origin not on path is fatal),
 * then a delete step for every indicator up to its source_ID.
 */
int msp_tlmsp_seq_rx_container(msp_tlmsp_seq_t *s, uint8_t origin, const uint8_t *m_info, size_t m_info_len)
{
    int last = position(s, origin);
    if (last < 0) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    int ret = check_indicators(s, m_info, m_info_len);
    if (ret != MSP_OK) {
        return ret;
    }
    for (int i = 0; i <= last; i++) {
        normal_step(&s->rx[i]);
    }
    for (size_t k = 0; m_info != NULL && k < m_info[1]; k++) {
        const uint8_t *ind = m_info + 2 + 3 * k;
        uint16_t count = (uint16_t)(ind[1] << 8 | ind[2]);
        for (int i = 0; i <= position(s, ind[0]); i++) {
            s->rx[i].pending += count;
        }
    }
    return MSP_OK;
}

/* seq(id) for the MAC inputs (5.4): our transmit counter, or the receive counter of id (6.4). */
int msp_tlmsp_seq_of(const msp_tlmsp_seq_t *s, uint8_t id, uint64_t *value)
{
    if (id == s->self) {
        *value = s->tx.value;
        return MSP_OK;
    }
    int i = position(s, id);
    if (i < 0) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    *value = s->rx[i].value;
    return MSP_OK;
}
