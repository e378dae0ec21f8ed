/*
 * Internal layout of the TLMSP connection objects (msp/tlmsp_conn.h): the
 * session state an entity shares between its hops, and the record layer of
 * one hop. Endpoints have one hop; a middlebox has two (client-facing A,
 * server-facing B), tlmsp-handshake.md 4.5.
 */
#ifndef MSP_TLMSP_CONN_INTERNAL_H
#define MSP_TLMSP_CONN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/buf.h"
#include "msp/tlmsp_conn.h"
#include "tlmsp_container.h"
#include "msp/tlmsp_hello.h"
#include "tlmsp_keys.h"
#include "tlmsp_seq.h"

#include "../common/guard.h"

#define DIR_C2S 0 /* client_* keys (tlmsp-records.md 5.2) */
#define DIR_S2C 1
#define MAX_POINT 133                  /* an uncompressed P-521 point; we use X25519 (32) and P-256 (65) */
#define MAX_HS_MSG (4 + 102400 + 1024) /* 1.10: a certificate message of 100 KiB and its headers */
#define MAX_CONTAINER_DATA 16355       /* the largest GCM plaintext whose fragment fits 16383 (records 2.4) */
#define NONCE_POOL 4096
#define SCRATCH_LEN (5 + 4 + 65535 + 64) /* a record's plaintext, a handshake's scratch */

/* What we learned about one middlebox of the list (index = list position). */
typedef struct mbox_peer {
    uint8_t got; /* GOT_* bits */
    uint8_t *cert;
    size_t cert_len;
    EVP_PKEY *pub;
    uint8_t to_client_point[MAX_POINT];
    size_t to_client_point_len;
    uint8_t to_server_point[MAX_POINT];
    size_t to_server_point_len;
    uint8_t master[MSP_TLMSP_MASTER_LEN]; /* endpoints: the pair with self */
    msp_tlmsp_key_block_t kb;
    msp_tlmsp_contrib_t *confirm; /* endpoints: its KeyConfirmation */
    EVP_MD_CTX *t;                /* endpoints: T_m (6.11) */
    int finished;                 /* endpoints: its MiddleboxFinished verified */
} mbox_peer_t;

enum { GOT_HELLO = 1, GOT_CERT = 2, GOT_KEX = 4, GOT_DONE = 8 };

/* A reader-check hash computed ahead, in a batch, for a container of the current input (conn_data.c). */
typedef struct rc_entry {
    const uint8_t *frag, *m_info;
    size_t frag_len, m_info_len;
    uint64_t seq;
    uint32_t sid;
    uint16_t flags;
    uint8_t type;
    uint8_t hash[32];
} rc_entry_t;

typedef struct sess {
    uint8_t self;
    msp_tlmsp_random_fn random;
    void *random_user;
    uint8_t pool[NONCE_POOL];
    size_t pool_used;
    msp_tlmsp_gcm_t g;
    X509_STORE *trust;
    msp_tlmsp_shared_t *shared; /* NULL: nothing shared, everything parsed here */
    msp_tlmsp_identity_t identity;
    msp_tlmsp_address_t client_address, server_address;
    uint8_t *addr_store; /* owned copies of every address */

    uint8_t client_random[32], server_random[32];
    uint32_t sid;
    uint16_t group;
    msp_tlmsp_context_list_t ctx;
    uint8_t present[256];   /* ctx.present with context 0, which is always there (1.7): what the key material lists */
    uint8_t *purpose_store; /* the contexts' purposes, back to back (ctx.purpose points into it) */
    msp_tlmsp_mbox_list_t *list; /* the session's middleboxes, client to server */
    mbox_peer_t *mb;
    uint8_t (*mb_to_server)[32];
    uint8_t (*mb_to_client)[32];

    uint8_t *server_cert;
    size_t server_cert_len;
    EVP_PKEY *server_pub;
    uint8_t ske_point[MAX_POINT];
    size_t ske_point_len;
    uint8_t cke_point[MAX_POINT];
    size_t cke_point_len;
    EVP_PKEY *eph;  /* endpoint: its ECDHE key; middlebox: the to_client key */
    EVP_PKEY *eph2; /* middlebox: the to_server key */
    uint8_t idlist[MSP_TLMSP_HASH_LEN];
    uint8_t master_cs[MSP_TLMSP_MASTER_LEN];
    msp_tlmsp_key_block_t kb_cs;
    /* middlebox: the pairs with the client and with the server */
    uint8_t master_c[MSP_TLMSP_MASTER_LEN], master_s[MSP_TLMSP_MASTER_LEN];
    msp_tlmsp_key_block_t kb_c, kb_s;

    msp_tlmsp_contrib_t *cc, *sc; /* the client's and the server's contributions */
    /* derived at ChangeCipherSpec, only for context 0 and the present contexts: keys[key_at[ctx]]; entry 0 stays
     * zero for the contexts not in the session (as a full table of 256 would have it) */
    msp_tlmsp_context_keys_t *keys;
    uint16_t key_at[256];
    uint8_t synch[2][MSP_TLMSP_KEY_LEN];
    int keyed;

    EVP_MD_CTX *t;    /* endpoint Finished transcript; middlebox: its T until the Finished */
    uint8_t *ch, *sh; /* ClientHello / ServerHello with headers, until the transcripts can take them */
    size_t ch_len, sh_len;
    msp_tlmsp_container_t cont; /* the container being read (views into the record) */
    msp_tlmsp_container_t pre;  /* one looked at ahead */
    rc_entry_t rc[MSP_TLMSP_HASH_BATCH];
    size_t nrc;
    const uint8_t *rc_end; /* the input the batch covers ends here */
    uint8_t *scratch;      /* SCRATCH_LEN bytes while an input is processed (sess_scratch), else NULL */
    size_t scratch_used;   /* how much of it may hold secrets (wiped when it goes) */
} sess_t;

struct hop;
typedef struct hop_ops {
    int (*handshake)(struct hop *h, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len);
    int (*ccs)(struct hop *h);
    int (*container)(struct hop *h, uint8_t type, const msp_tlmsp_container_t *c, const uint8_t *plain,
                     size_t plain_len, uint8_t author);
    /* a plain (2- or 3-byte) alert record; NULL: the default (a middlebox forwards it first) */
    int (*alert)(struct hop *h, const uint8_t *p, size_t n);
} hop_ops_t;

typedef struct hop {
    sess_t *s;
    const hop_ops_t *ops;
    void *owner;
    struct hop *other; /* a middlebox's other hop, where what comes in goes out */
    msp_buf_t *out;
    int dir_tx;      /* direction of what we send on this hop */
    uint8_t peer_ep; /* the endpoint at the far end (what we receive comes from its side) */
    int tx_sid, rx_sid, alert_container, tx_keyed, rx_keyed;
    int closed; /* an alert or close_notify went either way */
    int whole;  /* every handshake message must end in the record it starts in */
    int dead;
    msp_tlmsp_seq_t seq;
    uint8_t *rx; /* a partial record (5 + 65535 bytes), allocated only while one waits for its rest */
    size_t rx_len;
    msp_buf_t hs; /* a handshake message being reassembled */
} hop_t;

/* ---- the handshake as data (conn_states.c; the tables are in conn_client.c, conn_server.c, conn_mbox.c) ---- */

/*
 * One received handshake message (or ChangeCipherSpec record, or the
 * caller's start): type and body, msg = the whole message with its 4-byte
 * header, as it goes into transcripts and is forwarded.
 */
typedef struct hs_msg {
    uint8_t type;
    const uint8_t *body;
    size_t len;
    const uint8_t *msg;
    size_t msg_len;
} hs_msg_t;

#define HS_CT_START 0 /* the caller's msp_tlmsp_conn_start(): a row that only sends */

typedef int (*hs_fn)(hop_t *h, const hs_msg_t *m);

/*
 * A row (after s2n-tls's tls/s2n_handshake_io.c state_machine[]): in state,
 * a record of content type ct (22 handshake, 20 ChangeCipherSpec) carrying
 * message type is handled by fn; the state becomes next before fn runs, and
 * fn may move it on to alt instead (a loop that ends: the last
 * MiddleboxHelloDone, the last MiddleboxFinished). Anything without a row is
 * unexpected_message (10): "any other order is unexpected_message"
 * (tlmsp-handshake.md 4.3 step 3; RFC 5246 7.2.2 for the TLS messages).
 * sends and ref are for the flow printed into docs/tlmsp.md.
 */
typedef struct hs_row {
    uint8_t state;
    uint8_t ct;
    uint8_t type;
    uint8_t next;
    uint8_t alt;
    hs_fn fn;
    const char *sends; /* what fn writes, "" for nothing */
    const char *ref;   /* the clause it implements */
} hs_row_t;

typedef struct hs_table {
    const char *role;
    const char *ref;
    const hs_row_t *rows;
    size_t nrows;
    const char *const *states; /* names, indexed by state */
    size_t nstates;
    uint8_t initial, terminal;
} hs_table_t;

const hs_row_t *hs_find(const hs_table_t *t, int state, uint8_t ct, uint8_t type);
int hs_dispatch(const hs_table_t *t, int *state, hop_t *h, uint8_t ct, const hs_msg_t *m);
const char *hs_type_name(uint8_t ct, uint8_t type);
/* The flow of every table as text (docs/tlmsp.md, between its markers), into out. */
int hs_flow(msp_buf_t *out);

extern const hs_table_t client_table, server_table, mbox_client_table, mbox_server_table;

/* ---- session (conn_sess.c) ---- */
int sess_init(sess_t *s, uint8_t self, msp_tlmsp_random_fn random, void *user);
void sess_free(sess_t *s);
void sess_random(sess_t *s, uint8_t *p, size_t n);
/* The session's scratch space (SCRATCH_LEN bytes, of which the caller writes at most need), NULL when it cannot be
 * allocated; sess_scratch_drop wipes what was used and frees it (an idle session holds none). */
uint8_t *sess_scratch(sess_t *s, size_t need);
void sess_scratch_drop(sess_t *s);
void sess_nonce(sess_t *s, uint8_t nonce[12]);
int sess_set_list(sess_t *s, const msp_tlmsp_mbox_list_t *list);
/* The handshake is over: the contributions and transcripts go (an idle session keeps only what records need). */
void sess_handshake_done(sess_t *s);
/* The bytes of a list with n entries: a session keeps its lists that short (a full one is 74 KiB). */
size_t sess_list_size(size_t n);
int sess_set_contexts(sess_t *s, const msp_tlmsp_context_list_t *c);
int sess_mbox_index(const sess_t *s, uint8_t id);
uint8_t sess_access(const sess_t *s, uint8_t entity, uint8_t ctx);
int sess_store_addresses(sess_t *s, const msp_tlmsp_address_t *client, const msp_tlmsp_address_t *server);
int sess_dup(uint8_t **dst, size_t *dst_len, const uint8_t *p, size_t len);
int sess_same_address(const msp_tlmsp_address_t *a, const msp_tlmsp_address_t *b);
int sess_list_dup(const msp_tlmsp_mbox_list_t *in, msp_tlmsp_mbox_list_t **out, uint8_t **store);
int sess_cert_key(sess_t *s, const uint8_t *der, size_t len, EVP_PKEY **pub);
int sess_idlist(sess_t *s);
int sess_derive_context_keys(sess_t *s);
int sess_transcripts_start(sess_t *s, int per_mbox);
int sess_hash_add(EVP_MD_CTX *t, const uint8_t *p, size_t n);
int sess_hash_peek(EVP_MD_CTX *t, const uint8_t *extra, size_t extra_len, uint8_t out[32]);
int sess_pair_key(sess_t *s, uint8_t src, uint8_t dst, const uint8_t **key);

/* ---- record layer (conn_record.c) ---- */
void hop_init(hop_t *h, sess_t *s, const hop_ops_t *ops, void *owner, int dir_tx, uint8_t peer_ep);
void hop_free(hop_t *h);
int hop_input(hop_t *h, const uint8_t *in, size_t *inlen);
int hop_write(hop_t *h, uint8_t type, const uint8_t *p, size_t len);
int hop_write_msg(hop_t *h, const uint8_t *msg, size_t len);
int hop_write_ccs(hop_t *h);
int hop_fail(hop_t *h, int err);
int hop_alert(hop_t *h, uint8_t ctx, uint8_t level, uint8_t desc);
int hop_seq_path(hop_t *h, const uint8_t *path, size_t n);
int plain_alert(hop_t *h, const uint8_t *p, size_t n);

/* ---- containers (conn_data.c) ---- */
int data_send(hop_t *h, uint8_t type, uint8_t ctx, const uint8_t *p, size_t len); /* originate, or insert */
int data_send_many(hop_t *h, uint8_t type, uint8_t ctx, const uint8_t *p, size_t len);
void data_prefetch(hop_t *h, const uint8_t *in, size_t n);
int data_check(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, uint8_t *plain, size_t *plain_len,
               uint8_t *author);
int data_forward(hop_t *out, uint8_t type, const msp_tlmsp_container_t *c);
int data_replace(hop_t *out, uint8_t type, const msp_tlmsp_container_t *c, const uint8_t *p, size_t len);
int data_delete(hop_t *out, uint8_t type, const msp_tlmsp_container_t *c, uint8_t source);

/* ---- handshake helpers shared by the roles (conn_hs.c) ---- */
int hs_close(msp_buf_t *msg, size_t mark, int ret);
int hs_mbox_msg(sess_t *s, uint8_t type, const uint8_t *body, size_t len, uint8_t *index);
int hs_key_material(sess_t *s, uint8_t target, msp_buf_t *msg);
int hs_endpoint_masters(sess_t *s);
int hs_server_cert(sess_t *s, const uint8_t *body, size_t len);
int hs_server_kex(sess_t *s, const uint8_t *body, size_t len);
struct msp_tls12_ext;
int hs_adopt(sess_t *s, const msp_tlmsp_ext_client_t *e, const msp_tlmsp_mbox_list_t *list,
             const struct msp_tls12_ext *context_list);

/* ---- endpoints (conn_endpoint.c, conn_client.c, conn_server.c) ---- */
enum ep_state {
    EP_START,
    EP_SERVER_HELLO, /* client */
    EP_CERTIFICATE,
    EP_SERVER_KEX,
    EP_HELLO_DONE,
    EP_MBOX_MSGS,    /* middlebox Hello..HelloDone, then (server) ClientKeyExchange */
    EP_CLIENT_HELLO, /* server */
    EP_KEY_MATERIAL, /* KeyConfirmations, then the other endpoint's KeyMaterial */
    EP_CCS,
    EP_FINISHED,
    EP_MBOX_FINISHED,
    EP_READY,
    EP_NSTATES
};
extern const char *const ep_state_names[EP_NSTATES];

struct msp_tlmsp_conn {
    sess_t s;
    hop_t h;
    int state;
    msp_tlmsp_events_t ev;
    msp_tlmsp_mbox_list_t *policy; /* server: the list it accepts, or NULL */
    uint8_t *policy_store;         /* its addresses */
    uint8_t client_fin[4 + 12];    /* the client Finished message, for the transcripts */
    uint8_t server_fin[4 + 12];
    size_t confirmations;
    size_t mbox_finished;
    /* client, discovery (H 7.2) */
    int reconnect;                     /* the first ServerHello changed the path */
    int attempt2;                      /* this is the post-discovery connection */
    msp_tlmsp_mbox_list_t *discovered; /* attempt 1: the ServerHello's list (its bytes in s.sh) */
    msp_tlmsp_mbox_list_t *initial;    /* attempt 2: the list first named */
    uint8_t *initial_store;            /* its addresses */
    uint8_t dhash[MSP_TLMSP_HASH_LEN]; /* SHA-256 of attempt 1's ClientHello..ServerHelloDone */
    /* half-close (msp_tlmsp_endpoint_cfg_t.half_close): each direction's close_notify apart */
    int half_close;
    int sent_close; /* our close_notify went out: no more data from us */
    int peer_close; /* the peer's came in: no more data from it */
};

int ep_transcript(struct msp_tlmsp_conn *c, const uint8_t *msg, size_t len);
int ep_send_msg(struct msp_tlmsp_conn *c, const uint8_t *msg, size_t len);
int ep_key_materials(struct msp_tlmsp_conn *c);
int ep_send_finished(struct msp_tlmsp_conn *c);
int ep_mbox_msg(struct msp_tlmsp_conn *c, const hs_msg_t *m, uint8_t *index);
int client_hello(struct msp_tlmsp_conn *c);
/* row handlers both endpoints use (conn_endpoint.c) */
int ep_on_mbox_msg(hop_t *h, const hs_msg_t *m);
int ep_on_confirmation(hop_t *h, const hs_msg_t *m);
int ep_on_peer_material(struct msp_tlmsp_conn *c, const hs_msg_t *m);
int ep_on_ccs(hop_t *h, const hs_msg_t *m);
int ep_on_finished(hop_t *h, const hs_msg_t *m);
int ep_on_mbox_finished(hop_t *h, const hs_msg_t *m);

/* ---- middlebox (conn_mbox.c) ---- */
/*
 * A middlebox hop's state (tlmsp-handshake.md 4.5), one per hop: A faces the
 * client (mbox_client_table), B the server (mbox_server_table). B waits in
 * MB_IDLE until the ClientHello came in on A.
 */
enum mb_state {
    MB_IDLE,
    MB_CLIENT_HELLO,  /* A */
    MB_SERVER_HELLO,  /* B: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone in order */
    MB_CERTIFICATE,   /* B */
    MB_SERVER_KEX,    /* B */
    MB_HELLO_DONE,    /* B */
    MB_RELAY,         /* middlebox messages, ClientKeyExchange (A), key material, until ChangeCipherSpec */
    MB_FINISHED,      /* the endpoint's Finished (protected) */
    MB_MBOX_FINISHED, /* one MiddleboxFinished per middlebox */
    MB_DONE,
};

/*
 * A container a middlebox keeps (msp_tlmsp_mbox_release): its fields copied out of the record, bytes =
 * m_info | fragment | writer MAC | fmacs (47 bytes each, as on the wire) | replacement data.
 */
typedef struct held {
    struct held *next;
    uint8_t type;
    uint8_t pending; /* HOLD: waits for a verdict; else v (and data) decided, waiting behind one */
    uint8_t closes;  /* a fatal alert or close_notify: both hops close once it is out */
    uint8_t source;  /* the origin a delete indicator names */
    msp_tlmsp_verdict_t v;
    uint8_t context;
    uint16_t flags;
    int has_m_info, has_writer_mac;
    size_t m_info_len, fragment_len, nfmacs, data_len, size;
    uint8_t bytes[];
} held_t;

typedef struct held_q {
    held_t *head, *tail;
    size_t n, pending, bytes;
} held_q_t;

struct msp_tlmsp_mbox {
    sess_t s;
    held_q_t held[2]; /* by direction: [1] toward the server */
    int in_callback;
    hop_t a, b;
    int state_a, state_b; /* enum mb_state of each hop */
    msp_tlmsp_mbox_cfg_t cfg;
    int me;    /* our index in the list, -1 before the ClientHello */
    int sent;  /* our own four messages are out */
    int keyed; /* the pairs with both endpoints are derived */
    uint16_t sigalg;
    EVP_MD_CTX *tc, *ts; /* client-facing and server-facing transcripts, forked at the client Finished */
    size_t fin_a, fin_b; /* MiddleboxFinished seen from each side */
    msp_tlmsp_address_t next;
};

#endif
