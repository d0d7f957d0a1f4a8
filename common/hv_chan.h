/* hv_chan.h — one visor <-> hypervisor link over a blocking TCP socket (docs/hypervisor.md).
 *
 * Handshake: Noise_XK_25519_ChaChaPoly_SHA256, prologue SW_HV_PROLOGUE; the visor is the
 * initiator (it knows the hypervisor's key) and its message 3 payload is its 32-byte
 * Ed25519 public key, checked by the hypervisor as in stcp (SPEC §2). Each handshake and
 * transport message is framed u16 length || bytes (common/frame.h); handshake messages are
 * at most 512 bytes. Afterwards the records of hv_proto.h travel inside transport
 * messages of at most SW_NOISE_MAX_PAYLOAD plaintext bytes each.
 *
 * Threads: sw_hv_chan_send may be called from any thread (serialised by a mutex; a peer
 * that stops reading, or reads too slowly, makes it fail when the whole record is not out
 * within send_timeout_ms, SW_HV_SEND_TIMEOUT_MS by default); sw_hv_chan_recv from one
 * reader thread only. sw_hv_chan_shutdown (any thread) wakes a blocked reader.
 *
 * Ownership: the channel owns its fd from sw_hv_chan_init on and holds the transport keys;
 * sw_hv_chan_destroy closes the fd and wipes them. A struct is large (frame buffer): keep
 * it on the heap. */
#ifndef SW_HV_CHAN_H
#define SW_HV_CHAN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/hv_proto.h"
#include "common/keys.h"
#include "common/noise.h"

#define SW_HV_HS_FRAME_MAX 512
#define SW_HV_SEND_TIMEOUT_MS 10000

struct sw_hv_chan {
    int fd;
    struct sw_noise_cipher tx, rx;
    struct sw_pk peer;            /* the visor's proven key (responder side) */
    int send_timeout_ms;          /* per record sent (and per handshake message) */
    pthread_mutex_t wmu;          /* serialises sends */
    struct sw_frame_reader fr;
    uint8_t raw[16384];           /* bytes read but not yet fed to fr */
    size_t raw_off, raw_len;
    struct sw_buf in;             /* decrypted plaintext: records */
    size_t in_used;               /* bytes of in already handed out */
};

/* Takes ownership of fd (connected, blocking). */
int sw_hv_chan_init(struct sw_hv_chan *c, int fd);
/* Runs the handshake within timeout_ms. Initiator (visor): remote is the hypervisor's key.
 * Responder (hypervisor): remote NULL; c->peer receives the visor's proven Ed25519 key.
 * SW_ETIMEDOUT, SW_EIO (closed), SW_EPROTO / SW_ECRYPTO (not a peer of ours); err says. */
int sw_hv_chan_handshake(struct sw_hv_chan *c, bool initiator, const struct sw_keypair *kp,
                         const struct sw_pk *remote, int timeout_ms, struct sw_error *err);
/* Encodes m as one record and writes it (split over transport messages). */
int sw_hv_chan_send(struct sw_hv_chan *c, const struct sw_hv_msg *m);
/* Waits up to timeout_ms for the next message. *m borrows from the channel (valid until
 * the next recv). SW_ETIMEDOUT when none came (the channel stays usable), SW_EIO on EOF or
 * error, SW_EPROTO / SW_ECRYPTO on a broken peer (drop it). */
int sw_hv_chan_recv(struct sw_hv_chan *c, int timeout_ms, struct sw_hv_msg *m);
/* Shuts the socket down both ways (wakes the reader). */
void sw_hv_chan_shutdown(struct sw_hv_chan *c);
void sw_hv_chan_destroy(struct sw_hv_chan *c);

#endif
