/* Checkpoint files and the run directory's store of them.
 *
 * A file is: 8 bytes of magic "DDTCKPT\n", a little-endian uint32 format
 * version, a uint32 of flags (0), a uint64 payload length, the payload (one
 * protobuf ddtrain.Checkpoint message, proto/ddtrain.proto), and a uint32
 * CRC-32 (zlib's) of the payload. Each tensor also carries the CRC-32 of its
 * little-endian float bytes. */
#ifndef DDT_CKPT_H
#define DDT_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ddtrain.pb-c.h"
#include "errbuf.h"

#define CKPT_MAGIC "DDTCKPT\n"
/* Two versions, one for each layer of the format: the file's framing
 * (header, trailer; written in the header, checked before anything is
 * unpacked) and the Checkpoint message inside it (its format_version field:
 * which tensors and fields a checkpoint holds, checked when restoring). */
#define CKPT_FILE_VERSION 1
#define CKPT_MESSAGE_VERSION 1
#define CKPT_HEADER_BYTES 24

/* CRC-32 of n floats as little-endian bytes. */
uint32_t ckpt_tensor_crc(const float *x, size_t n);

/* Fills a Tensor message that points at data and shape (no copies) with its
 * CRC; both must outlive the message. */
void ckpt_tensor_view(Ddtrain__Tensor *t, uint32_t shape[2], const char *name,
                      const float *data, size_t n, uint32_t rows, uint32_t cols);

/* Writes msg to path atomically (temporary name, fsync, rename, directory
 * fsync). Returns 0 or -1 with err. */
int ckpt_write_file(const char *path, const Ddtrain__Checkpoint *msg, char *err, size_t errlen);

/* A run directory, its checkpoints folder or its `latest` pointer stand for
 * the checkpoint that `latest` names (a step-DIGITS.ckpt beside it, nothing
 * else): returns that path in buf. Any other path is returned as it is. */
const char *ckpt_follow_latest(const char *path, char *buf, size_t buflen);

/* Reads and validates path (after ckpt_follow_latest): magic, version,
 * length, CRC of the payload, the message, and every tensor's CRC. On
 * success *out must be freed with ckpt_free. */
int ckpt_read_file(const char *path, Ddtrain__Checkpoint **out, char *err, size_t errlen);
void ckpt_free(Ddtrain__Checkpoint *msg);

/* Finds a tensor by name in a repeated field; NULL if absent. */
const Ddtrain__Tensor *ckpt_find(Ddtrain__Tensor *const *tensors, size_t n, const char *name);

/* True when msg holds nothing at all (no version, configuration, schedule,
 * model or tensors): what an empty payload decodes to. Such a file is
 * refused with CKPT_EMPTY_MSG rather than read as a run of defaults. */
bool ckpt_is_empty(const Ddtrain__Checkpoint *msg);
#define CKPT_EMPTY_MSG "the checkpoint's payload is empty: the file holds no checkpoint (no configuration, schedule or tensors)"

/* ---- the store: RUN/checkpoints/step-00001234.ckpt and RUN/checkpoints/latest ---- */

/* Saves msg as the checkpoint of `step`, points `latest` at it, and removes
 * all but the newest keep. *written gets the path. */
int ckpt_store_save(const char *run_dir, uint64_t step, const Ddtrain__Checkpoint *msg,
                    int keep, char *written, size_t writtenlen, char *err, size_t errlen);

/* Removes the temporaries a checkpoint or `latest` write killed part-way
 * left in RUN/checkpoints (step-N.ckpt.tmp.PID, latest.tmp.PID; no other
 * file). Only the run's one coordinator may call it: it cannot tell a dead
 * writer's temporary from a live one's. Returns how many it removed. */
int ckpt_store_remove_temps(const char *run_dir);

/* Loads the newest valid checkpoint of a run: `latest` first, then older ones
 * newest first; damaged (or empty) ones are reported through warn() and skipped.
 * Returns 0, 1 when the run has no checkpoint at all, -1 on error. */
int ckpt_store_load_latest(const char *run_dir, Ddtrain__Checkpoint **out, char *path,
                           size_t pathlen, void (*warn)(const char *msg), char *err, size_t errlen);

#endif
