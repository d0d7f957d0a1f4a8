/* auth.h — who may use the SSH server: visor keys from an authorized-keys file (re-read
 * on every check, so edits apply without a restart) plus keys given on the command line. */
#ifndef SW_SSH_AUTH_H
#define SW_SSH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/keys.h"

#define SSH_AUTH_FILE_MAX (1u << 20) /* bigger files are refused (nobody is authorized) */

/* True when who is in allow[0..n_allow) or listed in the file at path (may be NULL). File
 * format: one hex key per line; '#' starts a comment; blank lines and surrounding spaces
 * are ignored. A missing file holds no keys; a line that is not a key is skipped with a
 * warning naming the line (through sw_log). */
bool ssh_auth_allowed(const char *path, const struct sw_pk *allow, size_t n_allow,
                      const struct sw_pk *who);
/* The same check over the file's contents (text[0..len), need not be NUL-terminated). */
bool ssh_auth_text_has(const char *text, size_t len, const char *path, const struct sw_pk *who);

#endif
