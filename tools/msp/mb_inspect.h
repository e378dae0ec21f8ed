/*
 * msp middlebox --icap / --out-pcap: the plaintext of the contexts a
 * middlebox may read goes to an ICAP service (msp/tlmsp_icap.h) and/or into
 * a capture of TCP flows (msp/ets_pcap.h). This is the program's glue: it
 * holds containers until the service's verdict and releases, replaces or
 * blocks them through the middlebox driver.
 */
#ifndef MSP_TOOLS_MB_INSPECT_H
#define MSP_TOOLS_MB_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "msp/tlmsp_io.h"
#include "prog.h"

typedef struct insp_site insp_site_t;
typedef struct insp insp_t;

/**
 * From the options: NULL in *out when neither --icap nor --out-pcap is
 * given. The ICAP service answers OPTIONS before this returns (the loop runs
 * until it does). 0; 2 (bad input: printed) or 1 (the service cannot be
 * reached or answers badly: printed).
 */
int insp_site_open(const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg, struct ev_loop *loop, insp_site_t **out);
/** Finishes the capture (renamed into place); NULL is ignored. */
void insp_site_close(insp_site_t *s);

/** The session of an accepted client socket; NULL when s is NULL (or out of memory: printed). */
insp_t *insp_new(insp_site_t *s, const char *tag, msp_io_mb_t **mb, int client_fd);
/** The socket toward the next hop (its peer address names the server in logs and captures). */
void insp_next_hop(insp_t *i, int fd);
/**
 * A container that passed the middlebox's checks: 1 when the inspection
 * decided (*v: HOLD or FORWARD), 0 when it leaves the container to the
 * activities.
 */
int insp_container(insp_t *i, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access, const uint8_t *p,
                   size_t len, msp_tlmsp_verdict_t *v);
/** The session ended: transactions cancelled, timers stopped, the capture's flow ended. */
void insp_closed(insp_t *i);
/** NULL is ignored. */
void insp_free(insp_t *i);

#endif
