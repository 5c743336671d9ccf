/* qipc-poller.c: one epoll set per main context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-poller-private.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Ready descriptors taken per dispatch; more wait for the next one. */
#define EVENTS_PER_DISPATCH 64

/* Descriptors a context's sockets watch with sources of their own before
 * the poller takes the next ones. For a few, the sources are cheaper: the
 * poller costs an epoll_wait() on top of the poll() of every iteration,
 * a tenth more on a ping-pong. For many, poll() over all of them costs
 * far more. */
#define DIRECT_MAX 16

typedef struct
{
  GSource source;
  GMainContext *context;      /* not referenced: its sockets hold it */
  int epfd;                   /* -1 until the first registration */
  gpointer tag;
  guint n_fds;                /* registrations alive */
  guint n_direct;             /* descriptors watched by sources of their own */
} Poller;

struct _QipcPollerFd
{
  Poller *poller;
  int fd;
  guint32 events;             /* as registered with epoll; 0: not */
  QipcPollerFunc in_func;
  gpointer in_data;
  QipcPollerFunc out_func;
  gpointer out_data;
  /* One for the registration, one per dispatch that holds it. */
  gint ref_count;
  gboolean freed;
};

G_LOCK_DEFINE_STATIC (pollers);
static GHashTable *pollers;   /* GMainContext * -> Poller * */

static void
pfd_unref (QipcPollerFd *pfd)
{
  if (--pfd->ref_count == 0)
    g_free (pfd);
}

static GIOCondition
condition_from_events (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) | ((events & EPOLLOUT) ? G_IO_OUT : 0) |
         ((events & EPOLLHUP) ? G_IO_HUP : 0) | ((events & EPOLLERR) ? G_IO_ERR : 0);
}

static gboolean
poller_check (GSource *source)
{
  Poller *poller = (Poller *) source;

  return poller->tag != NULL && (g_source_query_unix_fd (source, poller->tag) & G_IO_IN) != 0;
}

/* A callback may free any registration of the batch, its own included:
 * each is held until the batch is done, and skipped once freed. */
static gboolean
poller_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  Poller *poller = (Poller *) source;
  struct epoll_event events[EVENTS_PER_DISPATCH];
  int n = epoll_wait (poller->epfd, events, G_N_ELEMENTS (events), 0);

  for (int i = 0; i < n; i++)
    ((QipcPollerFd *) events[i].data.ptr)->ref_count++;
  for (int i = 0; i < n; i++)
    {
      QipcPollerFd *pfd = events[i].data.ptr;
      GIOCondition condition = condition_from_events (events[i].events);

      if (!pfd->freed && pfd->in_func != NULL && (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
        pfd->in_func (condition, pfd->in_data);
      if (!pfd->freed && pfd->out_func != NULL && (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR)))
        pfd->out_func (condition, pfd->out_data);
    }
  for (int i = 0; i < n; i++)
    pfd_unref (events[i].data.ptr);
  return G_SOURCE_CONTINUE;
}

static void
poller_finalize (GSource *source)
{
  Poller *poller = (Poller *) source;

  if (poller->epfd >= 0)
    close (poller->epfd);
}

static GSourceFuncs poller_funcs = {
  .check = poller_check,
  .dispatch = poller_dispatch,
  .finalize = poller_finalize,
};

/* The context's poller, made on first use. Called with the lock held. */
static Poller *
poller_lookup (GMainContext *context)
{
  Poller *poller;

  if (pollers == NULL)
    pollers = g_hash_table_new (NULL, NULL);
  poller = g_hash_table_lookup (pollers, context);
  if (poller != NULL)
    return poller;
  /* Attached with its first epoll registration: a context with few
   * sockets does not walk it on every iteration. */
  poller = (Poller *) g_source_new (&poller_funcs, sizeof (Poller));
  poller->context = context;
  poller->epfd = -1;
  g_source_set_static_name (&poller->source, "[qipc] sockets");
  /* A callback may run the context again (a blocking wait). */
  g_source_set_can_recurse (&poller->source, TRUE);
  g_hash_table_insert (pollers, context, poller);
  return poller;
}

/* With the lock held: the poller goes with its last user. */
static gboolean
poller_unused (Poller *poller)
{
  if (poller->n_fds > 0 || poller->n_direct > 0)
    return FALSE;
  g_hash_table_remove (pollers, poller->context);
  return TRUE;
}

static void
poller_free (Poller *poller)
{
  g_source_destroy (&poller->source);
  g_source_unref (&poller->source);
}

/* A registration in the context's poller, whose epoll descriptor is made
 * on first use; NULL when the system gives none (the caller then uses a
 * source of its own). */
static Poller *
poller_acquire (GMainContext *context)
{
  Poller *poller;

  G_LOCK (pollers);
  poller = poller_lookup (context);
  if (poller->epfd < 0)
    {
      poller->epfd = epoll_create1 (EPOLL_CLOEXEC);
      if (poller->epfd < 0)
        {
          gboolean unused = poller_unused (poller);

          G_UNLOCK (pollers);
          if (unused)
            poller_free (poller);
          return NULL;
        }
      poller->tag = g_source_add_unix_fd (&poller->source, poller->epfd, G_IO_IN);
      g_source_attach (&poller->source, context);
    }
  poller->n_fds++;
  G_UNLOCK (pollers);
  return poller;
}

static void
poller_release (Poller *poller)
{
  gboolean unused;

  G_LOCK (pollers);
  poller->n_fds--;
  unused = poller_unused (poller);
  G_UNLOCK (pollers);
  if (unused)
    poller_free (poller);
}

gboolean
_qipc_poller_take_direct (GMainContext *context)
{
  Poller *poller;
  gboolean taken;

  G_LOCK (pollers);
  poller = poller_lookup (context);
  /* Not taken means the room is full: the poller has users and stays. */
  taken = poller->n_direct < DIRECT_MAX;
  if (taken)
    poller->n_direct++;
  G_UNLOCK (pollers);
  return taken;
}

void
_qipc_poller_give_direct (GMainContext *context)
{
  Poller *poller;
  gboolean unused;

  G_LOCK (pollers);
  poller = g_hash_table_lookup (pollers, context);
  g_assert (poller != NULL && poller->n_direct > 0);
  poller->n_direct--;
  unused = poller_unused (poller);
  G_UNLOCK (pollers);
  if (unused)
    poller_free (poller);
}

/* Registers with epoll what the callbacks ask for. */
static gboolean
update_registration (QipcPollerFd *pfd)
{
  guint32 wanted = (pfd->in_func != NULL ? EPOLLIN : 0) | (pfd->out_func != NULL ? EPOLLOUT : 0);
  struct epoll_event event = { .events = wanted, .data.ptr = pfd };
  int op;

  if (wanted == pfd->events)
    return TRUE;
  op = pfd->events == 0 ? EPOLL_CTL_ADD : wanted == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (epoll_ctl (pfd->poller->epfd, op, pfd->fd, &event) < 0)
    return FALSE;
  pfd->events = wanted;
  return TRUE;
}

static void
pfd_free (QipcPollerFd *pfd)
{
  pfd->in_func = pfd->out_func = NULL;
  update_registration (pfd);
  pfd->freed = TRUE;
  poller_release (pfd->poller);
  pfd_unref (pfd);
}

gboolean
_qipc_poller_fd_watch (QipcPollerFd   **pfd_inout,
                       GMainContext    *context,
                       int              fd,
                       GIOCondition     condition,
                       QipcPollerFunc   func,
                       gpointer         user_data)
{
  QipcPollerFd *pfd = *pfd_inout;

  g_return_val_if_fail (condition == G_IO_IN || condition == G_IO_OUT, FALSE);

  if (pfd == NULL)
    {
      Poller *poller = poller_acquire (context);

      if (poller == NULL)
        return FALSE;
      pfd = g_new0 (QipcPollerFd, 1);
      pfd->poller = poller;
      pfd->fd = fd;
      pfd->ref_count = 1;
    }
  if (condition == G_IO_IN)
    {
      pfd->in_func = func;
      pfd->in_data = user_data;
    }
  else
    {
      pfd->out_func = func;
      pfd->out_data = user_data;
    }
  if (update_registration (pfd))
    {
      *pfd_inout = pfd;
      return TRUE;
    }

  /* Out of kernel memory for watches: the caller watches otherwise, and
   * what was watched before stays so. */
  *pfd_inout = _qipc_poller_fd_unwatch (pfd, condition);
  return FALSE;
}

QipcPollerFd *
_qipc_poller_fd_unwatch (QipcPollerFd *pfd,
                         GIOCondition  condition)
{
  if (pfd == NULL)
    return NULL;
  if (condition == G_IO_IN)
    pfd->in_func = NULL;
  else
    pfd->out_func = NULL;
  if (pfd->in_func == NULL && pfd->out_func == NULL)
    {
      pfd_free (pfd);
      return NULL;
    }
  update_registration (pfd);
  return pfd;
}

gboolean
_qipc_poller_fd_watches (QipcPollerFd *pfd,
                         GIOCondition  condition)
{
  if (pfd == NULL)
    return FALSE;
  return (condition == G_IO_IN ? pfd->in_func : pfd->out_func) != NULL;
}
