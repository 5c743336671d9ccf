/* qipc-socket.h: a buffered, signal-driven stream socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-version-macros.h"

G_BEGIN_DECLS

/**
 * QipcSocketState:
 * @QIPC_SOCKET_STATE_UNCONNECTED: not connected
 * @QIPC_SOCKET_STATE_HOST_LOOKUP: resolving the host name
 * @QIPC_SOCKET_STATE_CONNECTING: connecting (or, for TLS, handshaking)
 * @QIPC_SOCKET_STATE_CONNECTED: connected
 * @QIPC_SOCKET_STATE_CLOSING: writing what is queued, then closing
 *
 * The states of a [class@Socket], as in Qt's `QAbstractSocket::SocketState`.
 */
typedef enum {
  QIPC_SOCKET_STATE_UNCONNECTED,
  QIPC_SOCKET_STATE_HOST_LOOKUP,
  QIPC_SOCKET_STATE_CONNECTING,
  QIPC_SOCKET_STATE_CONNECTED,
  QIPC_SOCKET_STATE_CLOSING,
} QipcSocketState;

/**
 * QipcSocketError:
 * @QIPC_SOCKET_ERROR_CONNECTION_REFUSED: the peer refused the connection
 * @QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED: the peer closed the connection
 * @QIPC_SOCKET_ERROR_HOST_NOT_FOUND: the host name or address was not found
 * @QIPC_SOCKET_ERROR_SERVER_NOT_FOUND: no local server has this name
 * @QIPC_SOCKET_ERROR_SOCKET_ACCESS: the operation is not permitted
 * @QIPC_SOCKET_ERROR_SOCKET_RESOURCE: out of descriptors, memory or buffer
 *   space, including a full read buffer for an operation that needs more
 * @QIPC_SOCKET_ERROR_SOCKET_TIMEOUT: a `wait_for_*` call timed out
 * @QIPC_SOCKET_ERROR_ADDRESS_IN_USE: the address is in use by someone else
 * @QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE: the address is not one of this
 *   machine's, or is malformed
 * @QIPC_SOCKET_ERROR_NETWORK: the network failed (unreachable, reset)
 * @QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED: the TLS handshake failed, for
 *   example because the peer's certificate was not accepted
 * @QIPC_SOCKET_ERROR_OPERATION: the operation is not valid in the socket's
 *   current state (writing to an unconnected socket, connecting twice)
 * @QIPC_SOCKET_ERROR_FAILED: any other failure
 *
 * Errors in the %QIPC_SOCKET_ERROR domain, named like Qt's
 * `QAbstractSocket::SocketError`.
 */
typedef enum {
  QIPC_SOCKET_ERROR_CONNECTION_REFUSED,
  QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED,
  QIPC_SOCKET_ERROR_HOST_NOT_FOUND,
  QIPC_SOCKET_ERROR_SERVER_NOT_FOUND,
  QIPC_SOCKET_ERROR_SOCKET_ACCESS,
  QIPC_SOCKET_ERROR_SOCKET_RESOURCE,
  QIPC_SOCKET_ERROR_SOCKET_TIMEOUT,
  QIPC_SOCKET_ERROR_ADDRESS_IN_USE,
  QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE,
  QIPC_SOCKET_ERROR_NETWORK,
  QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED,
  QIPC_SOCKET_ERROR_OPERATION,
  QIPC_SOCKET_ERROR_FAILED,
} QipcSocketError;

/**
 * QIPC_SOCKET_ERROR:
 *
 * The error domain of [class@Socket], [class@Server] and their subclasses.
 */
#define QIPC_SOCKET_ERROR (qipc_socket_error_quark ())

#define QIPC_TYPE_SOCKET (qipc_socket_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_DERIVABLE_TYPE (QipcSocket, qipc_socket, QIPC, SOCKET, GObject)

/**
 * QipcSocketClass:
 * @parent_class: the parent class
 * @connected: default handler of [signal@Socket::connected]
 * @disconnected: default handler of [signal@Socket::disconnected]
 * @ready_read: default handler of [signal@Socket::ready-read]
 * @bytes_written: default handler of [signal@Socket::bytes-written]
 * @state_changed: default handler of [signal@Socket::state-changed]
 * @error_occurred: default handler of [signal@Socket::error-occurred]
 *
 * The class of [class@Socket]; subclasses provide the way to connect.
 */
struct _QipcSocketClass
{
  GObjectClass parent_class;

  void (* connected)      (QipcSocket      *self);
  void (* disconnected)   (QipcSocket      *self);
  void (* ready_read)     (QipcSocket      *self);
  void (* bytes_written)  (QipcSocket      *self,
                           gint64           bytes);
  void (* state_changed)  (QipcSocket      *self,
                           QipcSocketState  state);
  void (* error_occurred) (QipcSocket      *self,
                           const GError    *error);

  /*< private >*/
  gpointer padding[12];
};

QIPC_AVAILABLE_IN_1_0
GQuark           qipc_socket_error_quark            (void);

QIPC_AVAILABLE_IN_1_0
QipcSocketState  qipc_socket_get_state              (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
const GError    *qipc_socket_get_error              (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
gsize            qipc_socket_get_read_buffer_size   (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
void             qipc_socket_set_read_buffer_size   (QipcSocket    *self,
                                                     gsize          size);
QIPC_AVAILABLE_IN_1_0
gsize            qipc_socket_bytes_available        (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
GBytes          *qipc_socket_read                   (QipcSocket    *self,
                                                     gsize          max_size);
QIPC_AVAILABLE_IN_1_0
GBytes          *qipc_socket_read_all               (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
GBytes          *qipc_socket_peek                   (QipcSocket    *self,
                                                     gsize          max_size);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_can_read_line          (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
GBytes          *qipc_socket_read_line              (QipcSocket    *self,
                                                     gsize          max_size);
QIPC_AVAILABLE_IN_1_0
gsize            qipc_socket_read_data              (QipcSocket    *self,
                                                     guint8        *buffer,
                                                     gsize          size);
QIPC_AVAILABLE_IN_1_0
gsize            qipc_socket_peek_data              (QipcSocket    *self,
                                                     guint8        *buffer,
                                                     gsize          size);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_write                  (QipcSocket    *self,
                                                     GBytes        *bytes,
                                                     GError       **error);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_write_data             (QipcSocket    *self,
                                                     const guint8  *data,
                                                     gsize          size,
                                                     GError       **error);
QIPC_AVAILABLE_IN_1_0
gsize            qipc_socket_bytes_to_write         (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_flush                  (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
void             qipc_socket_close                  (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
void             qipc_socket_abort                  (QipcSocket    *self);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_wait_for_connected     (QipcSocket    *self,
                                                     int            timeout_ms,
                                                     GError       **error);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_wait_for_ready_read    (QipcSocket    *self,
                                                     int            timeout_ms,
                                                     GError       **error);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_wait_for_bytes_written (QipcSocket    *self,
                                                     int            timeout_ms,
                                                     GError       **error);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_socket_wait_for_disconnected  (QipcSocket    *self,
                                                     int            timeout_ms,
                                                     GError       **error);

G_END_DECLS
