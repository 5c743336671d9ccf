/* qipc-system-semaphore.c: a counting semaphore shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcSystemSemaphore:
 *
 * A counting semaphore that any process on the machine can open by a key,
 * like Qt's `QSystemSemaphore`, and safe against crashes.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(QipcSystemSemaphore) sem =
 *   qipc_system_semaphore_new ("printer", 1, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
 *
 * if (sem == NULL)
 *   g_error ("%s", error->message);
 * qipc_system_semaphore_acquire (sem, &error);   // blocks until the value is > 0
 * print_the_page ();
 * qipc_system_semaphore_release (sem, 1, &error);
 * ```
 *
 * ## Crash safety
 *
 * A process that dies, even by `SIGKILL`, gives back the acquisitions it
 * still held (acquired and not yet released), and nothing else: a release
 * that a process made stays released when it exits, so a producer that
 * posts and exits does not take its posts back. Plain System V `SEM_UNDO`
 * gets both wrong; qipc uses `SEM_UNDO` exactly for the acquisitions the
 * process holds and plain operations for the rest, in one atomic `semop()`.
 *
 * "Dies" means ends without running its exit handlers: killed by a
 * signal, crashed, or ended with `_exit()`. A process that exits normally
 * (returning from `main()` or calling `exit()`) keeps what it acquired and
 * did not release: a consumer that took ten items and exits has consumed
 * them, and they do not come back.
 *
 * ## Limits
 *
 * The value of a semaphore is at most %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE;
 * a release past it fails with %QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES.
 * A process gives back at most %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE acquisitions
 * when it dies; those past it are acquired without a way back.
 *
 * ## Lifetime
 *
 * As with Qt, the object that created the semaphore (or, with
 * %QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE, reset a leftover one) removes it
 * when it is finalized; [method@SystemSemaphore.remove] removes it earlier.
 * Other users then get %QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND. A semaphore
 * whose creator crashed is left over, with its value, until someone
 * creates it again.
 *
 * ## Keys
 *
 * Any non-empty UTF-8 string is a key. The native key is a System V IPC
 * key derived from a SHA-256 digest of it, shown as `0x…` the way `ipcs -s`
 * prints it; a second digest stored in the semaphore set tells qipc's
 * semaphores from foreign ones that happen to use the same IPC key.
 * Semaphores are created with mode 0600 unless
 * [ctor@SystemSemaphore.new_full] asks for others.
 *
 * A System V semaphore has no room for a name, so the object that creates
 * one also writes its key to `/dev/shm/qipc-sem-<digest>.key` (readable
 * as the semaphore is), and [method@SystemSemaphore.remove] deletes that
 * file: this is how `qipc sem list` shows keys.
 */

#include "qipc-system-semaphore.h"
#include "qipc-enum-types.h"
#include "qipc-native-key-private.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>
#include <unistd.h>

#define SEM_VALUE 0
#define SEM_TAG 1
#define N_SEMS 2

/* How long a worker thread of acquire_async() blocks before it looks at
 * its GCancellable again. The caller is told about cancellation at once;
 * this only bounds how long the thread lingers. */
#define ASYNC_SLICE_MS 100

/* How long an opener waits for a creator to finish initialising the set. */
#define INIT_WAIT_MS 2000

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

struct _QipcSystemSemaphore
{
  GObject parent_instance;

  char *key;
  char *native_key;
  guint initial_value;
  QipcSystemSemaphoreAccess access;
  guint permissions;

  key_t sysv_key;
  int tag;
  int semid;
  gboolean owns;
};

enum {
  PROP_0,
  PROP_KEY,
  PROP_NATIVE_KEY,
  PROP_INITIAL_VALUE,
  PROP_ACCESS,
  PROP_PERMISSIONS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void qipc_system_semaphore_initable_iface_init (GInitableIface *iface);

/**
 * qipc_system_semaphore_error_quark:
 *
 * Gets the error domain of [class@SystemSemaphore].
 *
 * Returns: the error quark
 */
G_DEFINE_QUARK (qipc-system-semaphore-error-quark, qipc_system_semaphore_error)

G_DEFINE_FINAL_TYPE_WITH_CODE (QipcSystemSemaphore, qipc_system_semaphore, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      qipc_system_semaphore_initable_iface_init))

/* How many acquisitions this process holds with SEM_UNDO, per semaphore set.
 * The kernel keeps the same count (semadj) per process, so this table is
 * per process too, and is emptied in a forked child, which starts with no
 * semadj of its own. */
static GMutex held_mutex;
static GHashTable *held_table;

static void
held_table_forget_all (void)
{
  /* Runs in the child after fork(): only this thread exists. */
  g_mutex_init (&held_mutex);
  if (held_table != NULL)
    g_hash_table_remove_all (held_table);
}

/* Turns @held acquisitions recorded with SEM_UNDO into plain ones: each
 * semop() adds units with SEM_UNDO (cancelling their recorded undo) and
 * takes as many again without it, atomically, so the value never moves.
 * Adding first could pass the maximum value and taking first could find
 * too little; one of the two orders always works for a chunk of 1. */
static void
commit_held (int semid,
             int held)
{
  int chunk = held;

  while (held > 0)
    {
      struct sembuf add_first[2] = {
        { SEM_VALUE, (short) chunk, SEM_UNDO },
        { SEM_VALUE, (short) -chunk, IPC_NOWAIT },
      };
      struct sembuf take_first[2] = {
        { SEM_VALUE, (short) -chunk, IPC_NOWAIT },
        { SEM_VALUE, (short) chunk, SEM_UNDO },
      };

      if (semop (semid, add_first, 2) == 0 || semop (semid, take_first, 2) == 0)
        held -= chunk;
      else if (errno == EIDRM || errno == EINVAL || chunk == 1)
        return;
      else
        chunk = MAX (chunk / 2, 1);
      chunk = MIN (chunk, held);
    }
}

/* Runs at a normal exit: what this process acquired and did not release
 * it consumed, so the kernel must not give it back. A process that dies
 * without running exit handlers (a crash, a signal, _exit()) skips this,
 * and the kernel gives the units back. */
static void
held_table_commit_all (void)
{
  GHashTableIter iter;
  gpointer semid, held;

  g_mutex_lock (&held_mutex);
  g_hash_table_iter_init (&iter, held_table);
  while (g_hash_table_iter_next (&iter, &semid, &held))
    commit_held (GPOINTER_TO_INT (semid), GPOINTER_TO_INT (held));
  g_hash_table_remove_all (held_table);
  g_mutex_unlock (&held_mutex);
}

static void
held_table_ensure (void)
{
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised))
    {
      held_table = g_hash_table_new (NULL, NULL);
      pthread_atfork (NULL, NULL, held_table_forget_all);
      atexit (held_table_commit_all);
      g_once_init_leave (&initialised, 1);
    }
}

/* Called with held_mutex held. */
static int
held_get (int semid)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (held_table, GINT_TO_POINTER (semid)));
}

/* Called with held_mutex held. */
static void
held_set (int semid,
          int held)
{
  if (held > 0)
    g_hash_table_insert (held_table, GINT_TO_POINTER (semid), GINT_TO_POINTER (held));
  else
    g_hash_table_remove (held_table, GINT_TO_POINTER (semid));
}

static void
set_error_from_errno (QipcSystemSemaphore  *self,
                      GError              **error,
                      int                   errsv,
                      const char           *what)
{
  QipcSystemSemaphoreError code;
  const char *reason = g_strerror (errsv);

  switch (errsv)
    {
    case EACCES:
    case EPERM:
      code = QIPC_SYSTEM_SEMAPHORE_ERROR_PERMISSION_DENIED;
      break;
    case EIDRM:
    case EINVAL:
    case ENOENT:
      code = QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND;
      reason = "the semaphore was removed";
      break;
    case ERANGE:
      code = QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES;
      reason = "the value would pass " G_STRINGIFY (QIPC_SYSTEM_SEMAPHORE_MAX_VALUE);
      break;
    case ENOSPC:
    case ENOMEM:
      code = QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES;
      break;
    case EEXIST:
      code = QIPC_SYSTEM_SEMAPHORE_ERROR_ALREADY_EXISTS;
      break;
    default:
      code = QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED;
      break;
    }

  g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, code,
               "Cannot %s semaphore “%s”: %s", what, self->key, reason);
}

static gboolean
check_not_removed (QipcSystemSemaphore  *self,
                   GError              **error)
{
  if (self->semid >= 0)
    return TRUE;

  set_error_from_errno (self, error, EIDRM, "use");
  return FALSE;
}

static void
qipc_system_semaphore_finalize (GObject *object)
{
  QipcSystemSemaphore *self = (QipcSystemSemaphore *) object;

  if (self->owns && self->semid >= 0)
    qipc_system_semaphore_remove (self, NULL);

  g_free (self->key);
  g_free (self->native_key);

  G_OBJECT_CLASS (qipc_system_semaphore_parent_class)->finalize (object);
}

static void
qipc_system_semaphore_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  QipcSystemSemaphore *self = QIPC_SYSTEM_SEMAPHORE (object);

  switch (prop_id)
    {
    case PROP_KEY:
      g_value_set_string (value, self->key);
      break;
    case PROP_NATIVE_KEY:
      g_value_set_string (value, self->native_key);
      break;
    case PROP_INITIAL_VALUE:
      g_value_set_uint (value, self->initial_value);
      break;
    case PROP_ACCESS:
      g_value_set_enum (value, self->access);
      break;
    case PROP_PERMISSIONS:
      g_value_set_uint (value, self->permissions);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_system_semaphore_set_property (GObject      *object,
                                    guint         prop_id,
                                    const GValue *value,
                                    GParamSpec   *pspec)
{
  QipcSystemSemaphore *self = QIPC_SYSTEM_SEMAPHORE (object);

  switch (prop_id)
    {
    case PROP_KEY:
      self->key = g_value_dup_string (value);
      break;
    case PROP_INITIAL_VALUE:
      self->initial_value = g_value_get_uint (value);
      break;
    case PROP_ACCESS:
      self->access = g_value_get_enum (value);
      break;
    case PROP_PERMISSIONS:
      self->permissions = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_system_semaphore_class_init (QipcSystemSemaphoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qipc_system_semaphore_finalize;
  object_class->get_property = qipc_system_semaphore_get_property;
  object_class->set_property = qipc_system_semaphore_set_property;

  /**
   * QipcSystemSemaphore:key: (getter get_key)
   *
   * The key the semaphore was opened with: any non-empty UTF-8 string.
   */
  properties[PROP_KEY] =
    g_param_spec_string ("key", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSystemSemaphore:native-key: (getter get_native_key)
   *
   * The System V IPC key derived from [property@SystemSemaphore:key], as
   * `ipcs -s` prints it (`0x…`).
   */
  properties[PROP_NATIVE_KEY] =
    g_param_spec_string ("native-key", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSystemSemaphore:initial-value:
   *
   * The value a newly created (or, with %QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE,
   * reset) semaphore starts with.
   */
  properties[PROP_INITIAL_VALUE] =
    g_param_spec_uint ("initial-value", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSystemSemaphore:access:
   *
   * How an existing semaphore with the key is treated.
   */
  properties[PROP_ACCESS] =
    g_param_spec_enum ("access", NULL, NULL,
                       QIPC_TYPE_SYSTEM_SEMAPHORE_ACCESS,
                       QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSystemSemaphore:permissions:
   *
   * The mode bits (as in chmod, at most 0777) of a semaphore this object
   * creates. Defaults to 0600: only the same user can use it.
   */
  properties[PROP_PERMISSIONS] =
    g_param_spec_uint ("permissions", NULL, NULL, 0, G_MAXUINT, 0600,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
qipc_system_semaphore_init (QipcSystemSemaphore *self)
{
  self->semid = -1;
  self->permissions = 0600;
}

static void
derive_native_key (QipcSystemSemaphore *self)
{
  self->sysv_key = qipc_key_derive_sysv_key ("sem", self->key, &self->tag);
  self->native_key = g_strdup_printf ("0x%08x", (guint32) self->sysv_key);
}

/* System V semaphores have no room for a name: the key of each one this
 * library creates is kept in a small file next to the shared memory
 * segments, for `qipc sem list`. Best effort: a semaphore works without it. */
static void
register_key (QipcSystemSemaphore *self)
{
  g_autofree char *path = qipc_key_registry_path ("sem", self->key);

  g_file_set_contents_full (path, self->key, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                            (int) ((self->permissions & 0444) | 0600), NULL);
}

static void
unregister_key (QipcSystemSemaphore *self)
{
  g_autofree char *path = qipc_key_registry_path ("sem", self->key);

  unlink (path);
}

static gboolean
create_new_set (QipcSystemSemaphore  *self,
                GError              **error)
{
  struct sembuf mark = { SEM_TAG, (short) self->tag, 0 };
  union semun arg;

  /* The owner needs write access to initialise the set, so the requested
   * mode is applied only once the set is ready. The semop() that writes
   * the tag also sets sem_otime, which is how openers know it is ready. */
  arg.val = (int) self->initial_value;
  if (semctl (self->semid, SEM_VALUE, SETVAL, arg) < 0 ||
      semop (self->semid, &mark, 1) < 0)
    {
      int errsv = errno;

      semctl (self->semid, 0, IPC_RMID);
      self->semid = -1;
      set_error_from_errno (self, error, errsv, "initialise");
      return FALSE;
    }

  if (self->permissions != 0600)
    {
      struct semid_ds ds;

      arg.buf = &ds;
      if (semctl (self->semid, 0, IPC_STAT, arg) == 0)
        {
          ds.sem_perm.mode = self->permissions;
          semctl (self->semid, 0, IPC_SET, arg);
        }
    }

  self->owns = TRUE;
  register_key (self);
  return TRUE;
}

static gboolean
wait_until_initialised (QipcSystemSemaphore  *self,
                        GError              **error)
{
  gint64 deadline = g_get_monotonic_time () + INIT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  struct semid_ds ds;
  union semun arg = { .buf = &ds };

  for (;;)
    {
      if (semctl (self->semid, 0, IPC_STAT, arg) < 0)
        {
          set_error_from_errno (self, error, errno, "open");
          return FALSE;
        }

      if (ds.sem_nsems != N_SEMS)
        {
          g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR,
                       QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR,
                       "Cannot open semaphore “%s”: its native key %s is used by "
                       "a semaphore set that qipc did not create",
                       self->key, self->native_key);
          return FALSE;
        }

      if (ds.sem_otime != 0)
        return TRUE;

      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR,
                       QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED,
                       "Cannot open semaphore “%s”: its creator never finished "
                       "initialising it (native key %s)",
                       self->key, self->native_key);
          return FALSE;
        }

      g_usleep (1000);
    }
}

static gboolean
open_existing_set (QipcSystemSemaphore  *self,
                   GError              **error)
{
  int tag;

  if (!wait_until_initialised (self, error))
    return FALSE;

  tag = semctl (self->semid, SEM_TAG, GETVAL);
  if (tag < 0)
    {
      set_error_from_errno (self, error, errno, "open");
      return FALSE;
    }
  if (tag != self->tag)
    {
      g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR,
                   QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR,
                   "Cannot open semaphore “%s”: its native key %s is used by "
                   "another qipc semaphore", self->key, self->native_key);
      return FALSE;
    }

  if (self->access == QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE)
    {
      union semun arg = { .val = (int) self->initial_value };

      if (semctl (self->semid, SEM_VALUE, SETVAL, arg) < 0)
        {
          set_error_from_errno (self, error, errno, "reset");
          return FALSE;
        }
      self->owns = TRUE;
      register_key (self);
    }

  return TRUE;
}

static gboolean
qipc_system_semaphore_initable_init (GInitable     *initable,
                                     GCancellable  *cancellable,
                                     GError       **error)
{
  QipcSystemSemaphore *self = QIPC_SYSTEM_SEMAPHORE (initable);
  int mode = IPC_CREAT | IPC_EXCL | 0600;

  if (!qipc_key_is_valid (self->key))
    {
      g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR,
                   "Invalid semaphore key “%s”: a key is a non-empty UTF-8 string",
                   self->key != NULL && g_utf8_validate (self->key, -1, NULL) ? self->key : "(not UTF-8)");
      return FALSE;
    }
  if (self->permissions > 0777)
    {
      g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED,
                   "Cannot create semaphore “%s”: permissions 0%o are not a mode "
                   "between 0 and 0777", self->key, self->permissions);
      return FALSE;
    }

  derive_native_key (self);

  if (self->initial_value > QIPC_SYSTEM_SEMAPHORE_MAX_VALUE)
    {
      set_error_from_errno (self, error, ERANGE, "create");
      return FALSE;
    }

  held_table_ensure ();

  /* The set may vanish between a failed exclusive create and the open
   * (its owner removed it), so try again a bounded number of times. */
  for (guint attempt = 0; attempt < 100; attempt++)
    {
      self->semid = semget (self->sysv_key, N_SEMS, mode);
      if (self->semid >= 0)
        return create_new_set (self, error);

      if (errno != EEXIST)
        {
          set_error_from_errno (self, error, errno, "create");
          return FALSE;
        }

      if (self->access == QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE)
        {
          g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR,
                       QIPC_SYSTEM_SEMAPHORE_ERROR_ALREADY_EXISTS,
                       "Cannot create semaphore “%s”: it already exists", self->key);
          return FALSE;
        }

      self->semid = semget (self->sysv_key, 0, 0);
      if (self->semid >= 0)
        return open_existing_set (self, error);
      if (errno != ENOENT)
        {
          set_error_from_errno (self, error, errno, "open");
          return FALSE;
        }
    }

  g_set_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED,
               "Cannot open semaphore “%s”: it is created and removed faster "
               "than it can be opened", self->key);
  return FALSE;
}

static void
qipc_system_semaphore_initable_iface_init (GInitableIface *iface)
{
  iface->init = qipc_system_semaphore_initable_init;
}

/**
 * qipc_system_semaphore_new:
 * @key: the key, any non-empty UTF-8 string
 * @initial_value: the value of a newly created semaphore, at most
 *   %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE
 * @access: what to do when a semaphore with @key exists
 * @error: return location for a #GError
 *
 * Opens or creates the semaphore named @key, with mode 0600.
 *
 * Returns: (transfer full): the semaphore, or %NULL with @error set
 */
QipcSystemSemaphore *
qipc_system_semaphore_new (const char                 *key,
                           guint                       initial_value,
                           QipcSystemSemaphoreAccess   access,
                           GError                    **error)
{
  return qipc_system_semaphore_new_full (key, initial_value, access, 0600, error);
}

/**
 * qipc_system_semaphore_new_full:
 * @key: the key, any non-empty UTF-8 string
 * @initial_value: the value of a newly created semaphore, at most
 *   %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE
 * @access: what to do when a semaphore with @key exists
 * @permissions: the mode bits of a semaphore this call creates, such as
 *   0660 to share it with the group
 * @error: return location for a #GError
 *
 * Opens or creates the semaphore named @key, creating it with @permissions.
 *
 * Returns: (transfer full): the semaphore, or %NULL with @error set
 */
QipcSystemSemaphore *
qipc_system_semaphore_new_full (const char                 *key,
                                guint                       initial_value,
                                QipcSystemSemaphoreAccess   access,
                                guint                       permissions,
                                GError                    **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (QIPC_TYPE_SYSTEM_SEMAPHORE, NULL, error,
                         "key", key,
                         "initial-value", initial_value,
                         "access", access,
                         "permissions", permissions,
                         NULL);
}

/**
 * qipc_system_semaphore_get_key: (get-property key)
 * @self: a #QipcSystemSemaphore
 *
 * Gets the key of the semaphore.
 *
 * Returns: the key the semaphore was opened with
 */
const char *
qipc_system_semaphore_get_key (QipcSystemSemaphore *self)
{
  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), NULL);

  return self->key;
}

/**
 * qipc_system_semaphore_get_native_key: (get-property native-key)
 * @self: a #QipcSystemSemaphore
 *
 * Gets the System V IPC key of the semaphore.
 *
 * Returns: the System V IPC key, as `ipcs -s` prints it
 */
const char *
qipc_system_semaphore_get_native_key (QipcSystemSemaphore *self)
{
  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), NULL);

  return self->native_key;
}

/**
 * qipc_system_semaphore_get_value:
 * @self: a #QipcSystemSemaphore
 * @error: return location for a #GError
 *
 * Reads the current value. Another process may change it right after, so
 * this is for monitoring and tests, not for deciding whether to acquire.
 *
 * Returns: the value, or -1 with @error set
 */
int
qipc_system_semaphore_get_value (QipcSystemSemaphore  *self,
                                 GError              **error)
{
  int value;

  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (!check_not_removed (self, error))
    return -1;

  value = semctl (self->semid, SEM_VALUE, GETVAL);
  if (value < 0)
    set_error_from_errno (self, error, errno, "read");
  return value;
}

/* Takes one unit, waiting at most @timeout_ms (forever if negative).
 * Returns TRUE when taken; FALSE with @error unset on timeout. */
static gboolean
acquire_with_timeout (QipcSystemSemaphore  *self,
                      int                   timeout_ms,
                      GError              **error)
{
  gint64 deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  struct sembuf op = { SEM_VALUE, -1, 0 };
  gboolean with_undo;
  int semid;

  if (!check_not_removed (self, error))
    return FALSE;
  semid = self->semid;

  /* Only acquisitions the kernel can undo at exit are marked so; past the
   * kernel's limit on semadj they are taken without a way back. */
  g_mutex_lock (&held_mutex);
  with_undo = held_get (semid) < QIPC_SYSTEM_SEMAPHORE_MAX_VALUE;
  g_mutex_unlock (&held_mutex);
  if (with_undo)
    op.sem_flg = SEM_UNDO;

  for (;;)
    {
      int r;

      if (deadline < 0)
        {
          r = semop (semid, &op, 1);
        }
      else
        {
          gint64 left = MAX (deadline - g_get_monotonic_time (), 0);
          struct timespec ts = { left / G_USEC_PER_SEC, (left % G_USEC_PER_SEC) * 1000 };

          if (left == 0)
            op.sem_flg |= IPC_NOWAIT;
          r = semtimedop (semid, &op, 1, &ts);
        }

      if (r == 0)
        break;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return FALSE;

      set_error_from_errno (self, error, errno, "acquire");
      return FALSE;
    }

  if (with_undo)
    {
      g_mutex_lock (&held_mutex);
      held_set (semid, held_get (semid) + 1);
      g_mutex_unlock (&held_mutex);
    }

  return TRUE;
}

/**
 * qipc_system_semaphore_acquire:
 * @self: a #QipcSystemSemaphore
 * @error: return location for a #GError
 *
 * Takes one unit of the semaphore, blocking the calling thread for as long
 * as the value is 0. Use [method@SystemSemaphore.acquire_async] from a
 * thread that runs a main loop.
 *
 * Returns: %TRUE when acquired, %FALSE with @error set
 */
gboolean
qipc_system_semaphore_acquire (QipcSystemSemaphore  *self,
                               GError              **error)
{
  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return acquire_with_timeout (self, -1, error);
}

/**
 * qipc_system_semaphore_try_acquire:
 * @self: a #QipcSystemSemaphore
 * @timeout_ms: how long to wait in milliseconds: 0 not at all, -1 forever
 * @error: return location for a #GError
 *
 * Takes one unit of the semaphore if it becomes available within
 * @timeout_ms.
 *
 * Returns: %TRUE when acquired; %FALSE with @error unset when the time ran
 *   out, or with @error set on failure
 */
gboolean
qipc_system_semaphore_try_acquire (QipcSystemSemaphore  *self,
                                   int                   timeout_ms,
                                   GError              **error)
{
  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return acquire_with_timeout (self, timeout_ms, error);
}

/**
 * qipc_system_semaphore_release:
 * @self: a #QipcSystemSemaphore
 * @n: how many units to give back, at most %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE
 * @error: return location for a #GError
 *
 * Adds @n to the value of the semaphore, waking waiters. Releases stay
 * when this process exits; only the acquisitions it still holds are given
 * back then. Releasing 0 does nothing.
 *
 * Returns: %TRUE on success, %FALSE with @error set, for example
 *   %QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES when the value would pass
 *   %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE
 */
gboolean
qipc_system_semaphore_release (QipcSystemSemaphore  *self,
                               guint                 n,
                               GError              **error)
{
  struct sembuf ops[2];
  guint n_ops = 0;
  int held, undone;
  int r, errsv;

  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_not_removed (self, error))
    return FALSE;
  if (n == 0)
    return TRUE;
  if (n > QIPC_SYSTEM_SEMAPHORE_MAX_VALUE)
    {
      set_error_from_errno (self, error, ERANGE, "release");
      return FALSE;
    }

  /* The units this process holds go back with SEM_UNDO, cancelling the
   * undo its acquisitions recorded; the rest are plain, so they stay
   * released when the process exits. One semop() applies both atomically. */
  g_mutex_lock (&held_mutex);
  held = held_get (self->semid);
  undone = MIN ((int) n, held);
  if (undone > 0)
    ops[n_ops++] = (struct sembuf) { SEM_VALUE, (short) undone, SEM_UNDO };
  if ((int) n > undone)
    ops[n_ops++] = (struct sembuf) { SEM_VALUE, (short) ((int) n - undone), 0 };

  do
    r = semop (self->semid, ops, n_ops);
  while (r < 0 && errno == EINTR);
  errsv = errno;

  if (r == 0)
    held_set (self->semid, held - undone);
  g_mutex_unlock (&held_mutex);

  if (r < 0)
    {
      set_error_from_errno (self, error, errsv, "release");
      return FALSE;
    }

  return TRUE;
}

static void
acquire_in_thread (GTask        *task,
                   gpointer      source_object,
                   gpointer      task_data,
                   GCancellable *cancellable)
{
  QipcSystemSemaphore *self = source_object;
  int slice = cancellable != NULL ? ASYNC_SLICE_MS : -1;

  while (!g_cancellable_is_cancelled (cancellable))
    {
      GError *error = NULL;

      if (acquire_with_timeout (self, slice, &error))
        {
          /* Cancelled while we were taking it: the caller was already
           * told, so the unit must go back. */
          if (!g_task_set_return_on_cancel (task, FALSE))
            qipc_system_semaphore_release (self, 1, NULL);
          else
            g_task_return_boolean (task, TRUE);
          return;
        }

      if (error != NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }

  g_task_return_error_if_cancelled (task);
}

/**
 * qipc_system_semaphore_acquire_async:
 * @self: a #QipcSystemSemaphore
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the semaphore is acquired, fails,
 *   or the wait is cancelled
 * @user_data: data for @callback
 *
 * Takes one unit of the semaphore without blocking the calling thread:
 * the wait happens in a worker thread, and @callback runs on the
 * thread-default main context of the caller.
 *
 * Cancelling @cancellable completes the call with %G_IO_ERROR_CANCELLED at
 * once; a unit that the worker took at the same moment is given back.
 */
void
qipc_system_semaphore_acquire_async (QipcSystemSemaphore *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, qipc_system_semaphore_acquire_async);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, acquire_in_thread);
}

/**
 * qipc_system_semaphore_acquire_finish:
 * @self: a #QipcSystemSemaphore
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@SystemSemaphore.acquire_async].
 *
 * Returns: %TRUE when the unit was acquired, %FALSE with @error set
 */
gboolean
qipc_system_semaphore_acquire_finish (QipcSystemSemaphore  *self,
                                      GAsyncResult         *result,
                                      GError              **error)
{
  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == qipc_system_semaphore_acquire_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * qipc_system_semaphore_remove:
 * @self: a #QipcSystemSemaphore
 * @error: return location for a #GError
 *
 * Removes the semaphore from the system now, whoever created it. Every
 * process still using it gets %QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND, and
 * waiters wake up with that error. The next open with the key creates a
 * new semaphore.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_system_semaphore_remove (QipcSystemSemaphore  *self,
                              GError              **error)
{
  int semid;

  g_return_val_if_fail (QIPC_IS_SYSTEM_SEMAPHORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_not_removed (self, error))
    return FALSE;

  semid = self->semid;
  self->semid = -1;

  g_mutex_lock (&held_mutex);
  held_set (semid, 0);
  g_mutex_unlock (&held_mutex);

  if (semctl (semid, 0, IPC_RMID) < 0)
    {
      set_error_from_errno (self, error, errno, "remove");
      return FALSE;
    }

  /* Only once the set is gone: a removal that fails must leave the key of
   * a live semaphore registered. */
  unregister_key (self);
  return TRUE;
}
