/* qipc-poller-private.h: one epoll set per main context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GLib's main loop polls every source's descriptors with poll() on each
 * iteration, and walks every source in prepare and check: a broker with
 * a thousand idle clients paid for all of them on every message (a round
 * trip through it took three times as long). Sockets that watch their
 * descriptor directly register it here instead: one epoll descriptor per
 * GMainContext is all the context polls, and an iteration costs what the
 * ready descriptors cost.
 *
 * Level-triggered, as poll() is. A descriptor has one registration, with
 * a callback for readability and one for writability; hang-ups and
 * errors go to whichever is set. Callbacks run from one GSource of the
 * context, which may recurse (a callback may run the context again).
 * Everything here runs in the thread that owns the context.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QipcPollerFd QipcPollerFd;

/* Called with what the descriptor is ready for (G_IO_IN, G_IO_OUT,
 * G_IO_HUP, G_IO_ERR). */
typedef void (*QipcPollerFunc) (GIOCondition condition,
                                gpointer     user_data);

/* Starts calling @func when @fd is ready for @condition, G_IO_IN or
 * G_IO_OUT, in @context. *@pfd is the descriptor's registration, made
 * here when NULL; the caller unwatches everything before it closes @fd.
 * FALSE when the system refused (no epoll descriptor or watch left): the
 * caller then watches with a source of its own. */
gboolean      _qipc_poller_fd_watch   (QipcPollerFd  **pfd,
                                       GMainContext   *context,
                                       int             fd,
                                       GIOCondition    condition,
                                       QipcPollerFunc  func,
                                       gpointer        user_data);
/* Stops watching for @condition. Returns @pfd, or NULL once nothing is
 * watched any more (the registration is then freed: a callback already
 * due in this iteration is not called). */
QipcPollerFd *_qipc_poller_fd_unwatch (QipcPollerFd   *pfd,
                                       GIOCondition    condition);
gboolean      _qipc_poller_fd_watches (QipcPollerFd   *pfd,
                                       GIOCondition    condition);

/* Whether the next descriptor watch in @context should be a source of the
 * caller's own (TRUE: the first few of a context, which poll() sees
 * cheaply) or go to the poller. A TRUE is given back with
 * _qipc_poller_give_direct() when that watch ends. */
gboolean      _qipc_poller_take_direct (GMainContext  *context);
void          _qipc_poller_give_direct (GMainContext  *context);

G_END_DECLS
