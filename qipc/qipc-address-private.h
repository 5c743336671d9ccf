/* qipc-address-private.h: channel bus addresses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  QIPC_ADDRESS_UNIX_PATH,     /* unix:path=/run/user/1000/qipc/bus */
  QIPC_ADDRESS_UNIX_ABSTRACT, /* unix:abstract=name */
  QIPC_ADDRESS_TCP,           /* tcp:host=127.0.0.1,port=7777[,ca=/etc/ca.pem], TLS */
} QipcAddressKind;

typedef struct {
  QipcAddressKind kind;
  char           *path;        /* UNIX_PATH: the path; UNIX_ABSTRACT: the name */
  char           *host;        /* TCP */
  guint16         port;        /* TCP; 0 lets a broker pick one */
  char           *ca_file;     /* TCP: the authorities a client trusts
                                * (PEM), or NULL for the system's */
} QipcAddress;

/* Parses @address into @out; QIPC_BUS_ERROR_INVALID_ADDRESS on error. */
gboolean  _qipc_address_parse            (const char    *address,
                                          QipcAddress   *out,
                                          GError       **error);
void      _qipc_address_clear            (QipcAddress   *address);
/* The name QipcLocalSocket and QipcLocalServer take ("@name" for an
 * abstract socket). */
char     *_qipc_address_local_name       (const QipcAddress *address);
/* The per-user default: unix:path=$XDG_RUNTIME_DIR/qipc/bus. */
char     *_qipc_address_default          (void);

G_END_DECLS
