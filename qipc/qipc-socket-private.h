/* qipc-socket-private.h: what subclasses and servers use of QipcSocket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "qipc-socket.h"

G_BEGIN_DECLS

/* Reads up to @size bytes without blocking into @buffer. Returns the
 * count, 0 at end of stream, or -1 with @error (G_IO_ERROR_WOULD_BLOCK
 * when nothing is there). */
typedef gssize (* QipcSocketReadFunc)  (QipcSocket    *self,
                                        guint8        *buffer,
                                        gsize          size,
                                        GError       **error);
/* Writes from @data without blocking, sending @fds (if any) with the
 * first byte. Returns the count or -1 with @error. */
typedef gssize (* QipcSocketWriteFunc) (QipcSocket    *self,
                                        const guint8  *data,
                                        gsize          size,
                                        GUnixFDList   *fds,
                                        GError       **error);

/* Called when data arrived, instead of emitting ::ready-read. */
typedef void   (* QipcSocketReadyFunc) (QipcSocket    *self,
                                        gpointer       user_data);
/* For sockets nobody outside the library reads: @func runs where
 * ::ready-read would be emitted, and the signal is not. */
void          _qipc_socket_set_ready_func   (QipcSocket           *self,
                                             QipcSocketReadyFunc   func,
                                             gpointer              user_data);
void          _qipc_socket_set_state        (QipcSocket           *self,
                                             QipcSocketState       state);
void          _qipc_socket_attach_stream    (QipcSocket           *self,
                                             GIOStream            *stream,
                                             GSocket              *socket);
void          _qipc_socket_replace_stream   (QipcSocket           *self,
                                             GIOStream            *stream);
/* Reading and writing on the GSocket's descriptor itself, for a
 * connection with no layer (such as TLS) between it and the stream. The
 * write takes no descriptors (@fds must be NULL). Their errors are in
 * G_IO_ERROR, as GSocket's are; _qipc_socket_set_io_error() makes one
 * from errno. */
gssize        _qipc_socket_fd_read          (QipcSocket           *self,
                                             guint8               *buffer,
                                             gsize                 size,
                                             GError              **error);
gssize        _qipc_socket_fd_write         (QipcSocket           *self,
                                             const guint8         *data,
                                             gsize                 size,
                                             GUnixFDList          *fds,
                                             GError              **error);
void          _qipc_socket_set_io_error     (GError              **error,
                                             int                   errsv,
                                             const char           *what);
/* The functions apply to the connection attached next (or the current
 * one) and are reset when it ends or when the stream is replaced, so a
 * subclass installs them each time it attaches a connection. */
void          _qipc_socket_set_io_funcs     (QipcSocket           *self,
                                             QipcSocketReadFunc    read_func,
                                             QipcSocketWriteFunc   write_func);
gboolean      _qipc_socket_queue_write      (QipcSocket           *self,
                                             GBytes               *bytes,
                                             GUnixFDList          *fds,
                                             GError              **error);
void          _qipc_socket_fail             (QipcSocket           *self,
                                             const GError         *error);
/* Records @error and emits error-occurred, leaving the connection as it
 * is (for a misuse such as connecting twice, as Qt reports it). */
void          _qipc_socket_report_error     (QipcSocket           *self,
                                             const GError         *error);
void          _qipc_socket_pause_reading    (QipcSocket           *self,
                                             gboolean              paused);
/* Frees an empty read buffer that a read grew (reads make room for 64
 * KiB): for a server holding thousands of mostly idle connections. A
 * busy socket (its last read took 16 KiB or more) keeps its buffer,
 * which saves an allocation and fresh pages per read. Returns whether a
 * large buffer is kept, for _qipc_socket_trim_read_buffer() to free
 * once the peer is quiet. */
gboolean      _qipc_socket_release_read_buffer (QipcSocket        *self);
/* For a periodic sweep: frees the empty large read buffer of a peer that
 * received nothing since the previous call. Returns whether a large
 * buffer is still kept. */
gboolean      _qipc_socket_trim_read_buffer (QipcSocket           *self);
/* How many bytes the read buffer holds allocated (for tests). */
gsize         _qipc_socket_get_read_allocated (QipcSocket         *self);
/* Queues @size bytes (1 to QIPC_SOCKET_RESERVE_MAX) that the caller
 * writes at the returned address before it calls into the socket again:
 * a frame built in place instead of built and copied. NULL when the
 * socket is not writable. */
#define QIPC_SOCKET_RESERVE_MAX 4096
guint8       *_qipc_socket_write_reserve    (QipcSocket           *self,
                                             gsize                 size);
/* The unread bytes, in place: a parser reads what it needs and then
 * consumes it, without copying. The pointer is valid until the next
 * call into the socket. */
const guint8 *_qipc_socket_peek_buffer      (QipcSocket           *self,
                                             gsize                *size);
void          _qipc_socket_consume          (QipcSocket           *self,
                                             gsize                 size);
GIOStream    *_qipc_socket_get_stream       (QipcSocket           *self);
GSocket      *_qipc_socket_get_gsocket      (QipcSocket           *self);
int           _qipc_socket_get_fd           (QipcSocket           *self);
GCancellable *_qipc_socket_get_cancellable  (QipcSocket           *self);
GMainContext *_qipc_socket_get_context      (QipcSocket           *self);
void          _qipc_socket_set_error_from_gio (GError            **error,
                                               const GError       *gio_error,
                                               const char         *what);

G_END_DECLS
