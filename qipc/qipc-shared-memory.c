/* qipc-shared-memory.c: a named memory segment shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcSharedMemory:
 *
 * A memory segment that processes share by a key, with a lock that
 * survives crashes and change notification, like Qt's `QSharedMemory`.
 *
 * ```c
 * g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new ("sensor/frame");
 * g_autoptr(GError) error = NULL;
 *
 * if (!qipc_shared_memory_create (shm, 4096, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error))
 *   g_error ("%s", error->message);
 *
 * qipc_shared_memory_lock (shm, &error);
 * memcpy (qipc_shared_memory_get_data (shm), frame, frame_size);
 * qipc_shared_memory_unlock (shm, &error);
 * qipc_shared_memory_notify_changed (shm, &error);   // others emit ::changed
 * ```
 *
 * ## Lifetime
 *
 * A segment lives while some process is attached to it. When the last
 * one detaches or exits, crashed ones included, the segment is gone: an
 * attach finds nothing (%QIPC_SHARED_MEMORY_ERROR_NOT_FOUND) and a create
 * gets a fresh, zeroed segment. The memory of a segment whose last user
 * crashed is given back the next time any process creates a segment, or
 * attaches to that one.
 *
 * ## The lock
 *
 * [method@SharedMemory.lock] takes a robust process-shared mutex stored in
 * the segment: uncontended, it costs no system call. The lock belongs to
 * the thread that took it, which must be the one that releases it. If its
 * holder dies, the next locker gets the lock and
 * [signal@SharedMemory::lock-recovered] tells it the data may be half
 * written. Detaching releases a lock this object holds.
 *
 * ## Change notification
 *
 * [method@SharedMemory.notify_changed] wakes every other object attached to the
 * key, in any process, which then emits [signal@SharedMemory::changed] on
 * the main context that was the thread-default one when it attached. No
 * polling: each attached object waits on a FIFO of its own. Notifications
 * that arrive before the receiver runs are merged into one signal.
 *
 * ## Page faults
 *
 * The first write to each page of a fresh segment costs a page fault,
 * which makes filling a new segment about ten times slower than writing a
 * warm one. [method@SharedMemory.prefault] allocates and maps every page
 * up front, and fails cleanly when the system has no memory left for it
 * (instead of a `SIGBUS` on first touch).
 *
 * ## Keys and files
 *
 * Any non-empty UTF-8 string is a key. The segment is the file
 * `/dev/shm/qipc-shm-<digest>`, where the digest is derived from the key
 * with SHA-256, so no key can escape `/dev/shm` or collide with another.
 * Segments are created with mode 0600 unless
 * [property@SharedMemory:permissions] asks for others. The key itself is
 * recorded in the segment's header page (when it fits: keys up to about
 * 3000 bytes), which is how `qipc shm list` shows it.
 */

#include "qipc-shared-memory.h"
#include "qipc-shared-memory-private.h"
#include "qipc-enum-types.h"
#include "qipc-native-key-private.h"
#include "qipc-shm-header-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"
#define HEADER_MAGIC QIPC_SHM_HEADER_MAGIC
#define HEADER_VERSION QIPC_SHM_HEADER_VERSION

/* How long a worker of lock_async() waits before it looks at its
 * GCancellable again; the caller hears of cancellation at once. */
#define ASYNC_SLICE_MS 100

/* A mapping outlives the attachment while a lock_async() worker still
 * waits on the mutex inside it. */
typedef struct
{
  guint8 *base;
  gsize length;
} Mapping;

struct _QipcSharedMemory
{
  GObject parent_instance;

  char *key;
  char *name;
  char *native_key;
  guint permissions;

  /* Valid while attached. */
  int fd;
  gboolean fd_writable;
  QipcSharedMemoryAccess access;
  Mapping *mapping;
  QipcShmHeader *header;
  guint8 *data;
  gsize size;
  gboolean locked;
  gboolean recovered_by_waiter;

  char *notify_dir;
  char *fifo_path;
  int fifo_fd;
  GSource *fifo_source;
};

enum {
  CHANGED,
  LOCK_RECOVERED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static QipcSharedMemoryDetachHook detach_hook;
static gpointer detach_hook_data;

enum {
  PROP_0,
  PROP_KEY,
  PROP_NATIVE_KEY,
  PROP_PERMISSIONS,
  PROP_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/**
 * qipc_shared_memory_error_quark:
 *
 * Gets the error domain of [class@SharedMemory].
 *
 * Returns: the error quark
 */
G_DEFINE_QUARK (qipc-shared-memory-error-quark, qipc_shared_memory_error)

G_DEFINE_FINAL_TYPE (QipcSharedMemory, qipc_shared_memory, G_TYPE_OBJECT)

static void
set_error_from_errno (QipcSharedMemory  *self,
                      GError           **error,
                      int                errsv,
                      const char        *what)
{
  QipcSharedMemoryError code;

  switch (errsv)
    {
    case EACCES:
    case EPERM:
    case EROFS:
      code = QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED;
      break;
    case ENOENT:
      code = QIPC_SHARED_MEMORY_ERROR_NOT_FOUND;
      break;
    case EEXIST:
      code = QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS;
      break;
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case EFBIG:
      code = QIPC_SHARED_MEMORY_ERROR_OUT_OF_RESOURCES;
      break;
    default:
      code = QIPC_SHARED_MEMORY_ERROR_FAILED;
      break;
    }

  g_set_error (error, QIPC_SHARED_MEMORY_ERROR, code,
               "Cannot %s shared memory “%s”: %s", what, self->key, g_strerror (errsv));
}

/* Users of a segment hold an open-file-description read lock on its first
 * byte; the kernel drops it when the process exits, however it exits.
 * Whoever gets the write lock is the only user left, and only a holder of
 * the write lock may unlink the file. A user that leaves drops its read
 * lock before it tries the write lock (see qipc_shared_memory_detach()). */
static int
ofd_lock (int      fd,
          short    type,
          gboolean wait)
{
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
  int r;

  do
    r = fcntl (fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
  while (r < 0 && errno == EINTR);
  return r;
}

static gboolean
ofd_has_other_users (int fd)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

  if (fcntl (fd, F_OFD_GETLK, &fl) < 0)
    return TRUE;
  return fl.l_type != F_UNLCK;
}

static char *
notify_dir_for (const char *segment_path,
                guint64     generation)
{
  /* One directory per incarnation of the segment, so the last user of an
   * old one never deletes the FIFOs of a new one. */
  return g_strdup_printf ("%s.%016" G_GINT64_MODIFIER "x.d", segment_path, generation);
}

static void
remove_notify_dir (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *entry;

  if (d == NULL)
    return;
  while ((entry = readdir (d)) != NULL)
    if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0)
      unlinkat (dirfd (d), entry->d_name, 0);
  closedir (d);
  rmdir (dir);
}

/* Unlinks the segment file @fd refers to, with its notify directory.
 * The caller holds the write lock on @fd. */
static void
unlink_segment (const char *path,
                int         fd)
{
  QipcShmHeader header;
  struct stat by_fd, by_path;

  if (fstat (fd, &by_fd) < 0 || by_fd.st_nlink == 0)
    return;
  if (stat (path, &by_path) < 0 || by_path.st_ino != by_fd.st_ino || by_path.st_dev != by_fd.st_dev)
    return;

  unlink (path);
  if (pread (fd, &header, sizeof header, 0) == (ssize_t) sizeof header &&
      header.magic == HEADER_MAGIC)
    {
      g_autofree char *dir = notify_dir_for (path, header.generation);
      remove_notify_dir (dir);
    }
}

static Mapping *
mapping_new (guint8 *base,
             gsize   length)
{
  Mapping *mapping = g_atomic_rc_box_new0 (Mapping);

  mapping->base = base;
  mapping->length = length;
  return mapping;
}

static void
mapping_clear (gpointer data)
{
  Mapping *mapping = data;

  munmap (mapping->base, mapping->length);
}

static void
mapping_unref (Mapping *mapping)
{
  g_atomic_rc_box_release_full (mapping, mapping_clear);
}

static gboolean
fifo_readable_cb (int          fd,
                  GIOCondition condition,
                  gpointer     user_data)
{
  QipcSharedMemory *self = user_data;
  char buffer[256];

  /* Drain everything: notifications that piled up become one signal. */
  while (read (fd, buffer, sizeof buffer) > 0)
    ;

  g_signal_emit (self, signals[CHANGED], 0);
  return G_SOURCE_CONTINUE;
}

static guint
mode_with_search_bits (guint mode)
{
  guint dir_mode = mode | ((mode & 0444) >> 2);

  /* Others may add their FIFOs, but not remove anyone else's. */
  if (dir_mode & 0022)
    dir_mode |= S_ISVTX;
  return dir_mode;
}

static gboolean
start_listening (QipcSharedMemory  *self,
                 GError           **error)
{
  static gint counter;
  struct stat st;

  self->notify_dir = notify_dir_for (self->native_key, self->header->generation);
  if (fstat (self->fd, &st) < 0)
    return set_error_from_errno (self, error, errno, "attach to"), FALSE;

  if (mkdir (self->notify_dir, 0700) == 0)
    chmod (self->notify_dir, mode_with_search_bits (st.st_mode & 0777));
  else if (errno != EEXIST)
    return set_error_from_errno (self, error, errno, "attach to"), FALSE;

  self->fifo_path = g_strdup_printf ("%s/%d-%d-%08x", self->notify_dir, (int) getpid (),
                                     g_atomic_int_add (&counter, 1), g_random_int ());
  if (mkfifo (self->fifo_path, 0600) < 0)
    return set_error_from_errno (self, error, errno, "attach to"), FALSE;
  chmod (self->fifo_path, st.st_mode & 0666);

  /* Opened for writing as well, so that the FIFO never reports a hang-up
   * when a notifier closes its end. */
  self->fifo_fd = open (self->fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (self->fifo_fd < 0)
    return set_error_from_errno (self, error, errno, "attach to"), FALSE;

  self->fifo_source = g_unix_fd_source_new (self->fifo_fd, G_IO_IN);
  g_source_set_callback (self->fifo_source, G_SOURCE_FUNC (fifo_readable_cb), self, NULL);
  g_source_set_static_name (self->fifo_source, "[qipc] shared memory notification");
  g_source_attach (self->fifo_source, g_main_context_get_thread_default ());
  return TRUE;
}

static void
stop_listening (QipcSharedMemory *self)
{
  if (self->fifo_source != NULL)
    {
      g_source_destroy (self->fifo_source);
      g_clear_pointer (&self->fifo_source, g_source_unref);
    }
  if (self->fifo_fd >= 0)
    {
      close (self->fifo_fd);
      self->fifo_fd = -1;
    }
  if (self->fifo_path != NULL)
    unlink (self->fifo_path);
  g_clear_pointer (&self->fifo_path, g_free);
  g_clear_pointer (&self->notify_dir, g_free);
}

static void
forget_attachment (QipcSharedMemory *self)
{
  stop_listening (self);
  g_clear_pointer (&self->mapping, mapping_unref);
  self->header = NULL;
  self->data = NULL;
  self->size = 0;
  if (self->fd >= 0)
    close (self->fd);
  self->fd = -1;
  self->locked = FALSE;
  self->recovered_by_waiter = FALSE;
}

static void
qipc_shared_memory_finalize (GObject *object)
{
  QipcSharedMemory *self = (QipcSharedMemory *) object;

  qipc_shared_memory_detach (self);

  g_free (self->key);
  g_free (self->name);
  g_free (self->native_key);

  G_OBJECT_CLASS (qipc_shared_memory_parent_class)->finalize (object);
}

static void
qipc_shared_memory_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  QipcSharedMemory *self = QIPC_SHARED_MEMORY (object);

  switch (prop_id)
    {
    case PROP_KEY:
      g_value_set_string (value, self->key);
      break;
    case PROP_NATIVE_KEY:
      g_value_set_string (value, self->native_key);
      break;
    case PROP_PERMISSIONS:
      g_value_set_uint (value, self->permissions);
      break;
    case PROP_SIZE:
      g_value_set_uint64 (value, self->size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_shared_memory_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  QipcSharedMemory *self = QIPC_SHARED_MEMORY (object);

  switch (prop_id)
    {
    case PROP_KEY:
      self->key = g_value_dup_string (value);
      break;
    case PROP_PERMISSIONS:
      qipc_shared_memory_set_permissions (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_shared_memory_constructed (GObject *object)
{
  QipcSharedMemory *self = QIPC_SHARED_MEMORY (object);

  G_OBJECT_CLASS (qipc_shared_memory_parent_class)->constructed (object);

  if (qipc_key_is_valid (self->key))
    {
      self->name = qipc_key_derive_name ("shm", self->key);
      self->native_key = g_build_filename (SHM_DIR, self->name, NULL);
    }
}

static void
qipc_shared_memory_class_init (QipcSharedMemoryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qipc_shared_memory_finalize;
  object_class->constructed = qipc_shared_memory_constructed;
  object_class->get_property = qipc_shared_memory_get_property;
  object_class->set_property = qipc_shared_memory_set_property;

  /**
   * QipcSharedMemory:key: (getter get_key)
   *
   * The key of the segment: any non-empty UTF-8 string.
   */
  properties[PROP_KEY] =
    g_param_spec_string ("key", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSharedMemory:native-key: (getter get_native_key)
   *
   * The file that holds the segment, derived from
   * [property@SharedMemory:key]; %NULL when the key is invalid.
   */
  properties[PROP_NATIVE_KEY] =
    g_param_spec_string ("native-key", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSharedMemory:permissions: (getter get_permissions) (setter set_permissions)
   *
   * The mode bits (at most 0777) of a segment [method@SharedMemory.create]
   * makes. Defaults to 0600: only the same user can attach.
   */
  properties[PROP_PERMISSIONS] =
    g_param_spec_uint ("permissions", NULL, NULL, 0, 0777, 0600,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSharedMemory:size: (getter get_size)
   *
   * The size of the attached segment in bytes, 0 when not attached.
   */
  properties[PROP_SIZE] =
    g_param_spec_uint64 ("size", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcSharedMemory::changed:
   * @self: the segment
   *
   * Another object attached to the same key, in this process or another,
   * called [method@SharedMemory.notify_changed]. Emitted on the main context that
   * was the thread-default one when this object attached. Several
   * notifications may arrive as one emission.
   */
  signals[CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcSharedMemory::lock-recovered:
   * @self: the segment
   *
   * The lock was just taken by this object from a holder that died
   * holding it. The data it protects may be half written; the handler can
   * repair it before the lock call returns.
   */
  signals[LOCK_RECOVERED] =
    g_signal_new ("lock-recovered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qipc_shared_memory_init (QipcSharedMemory *self)
{
  self->fd = -1;
  self->fifo_fd = -1;
  self->permissions = 0600;
}

/**
 * qipc_shared_memory_new:
 * @key: the key of the segment, any non-empty UTF-8 string
 *
 * Creates an object for the segment named @key, not attached yet. An
 * invalid key is reported by [method@SharedMemory.create] and
 * [method@SharedMemory.attach].
 *
 * Returns: (transfer full): a new #QipcSharedMemory
 */
QipcSharedMemory *
qipc_shared_memory_new (const char *key)
{
  return g_object_new (QIPC_TYPE_SHARED_MEMORY, "key", key, NULL);
}

/**
 * qipc_shared_memory_get_key: (get-property key)
 * @self: a #QipcSharedMemory
 *
 * Gets the key of the segment.
 *
 * Returns: (nullable): the key of the segment
 */
const char *
qipc_shared_memory_get_key (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), NULL);

  return self->key;
}

/**
 * qipc_shared_memory_get_native_key: (get-property native-key)
 * @self: a #QipcSharedMemory
 *
 * Gets the file that holds the segment.
 *
 * Returns: (nullable) (type filename): the file holding the segment, or
 *   %NULL when the key is invalid
 */
const char *
qipc_shared_memory_get_native_key (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), NULL);

  return self->native_key;
}

/**
 * qipc_shared_memory_get_permissions: (get-property permissions)
 * @self: a #QipcSharedMemory
 *
 * Gets the mode bits that segments created by @self get.
 *
 * Returns: the mode bits of segments this object creates
 */
guint
qipc_shared_memory_get_permissions (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), 0);

  return self->permissions;
}

/**
 * qipc_shared_memory_set_permissions: (set-property permissions)
 * @self: a #QipcSharedMemory
 * @permissions: mode bits, at most 0777, such as 0640 to let the group read
 *
 * Sets the mode bits of segments this object creates from now on.
 */
void
qipc_shared_memory_set_permissions (QipcSharedMemory *self,
                                    guint             permissions)
{
  g_return_if_fail (QIPC_IS_SHARED_MEMORY (self));
  g_return_if_fail (permissions <= 0777);

  if (self->permissions == permissions)
    return;
  self->permissions = permissions;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PERMISSIONS]);
}

static gboolean
check_usable_key (QipcSharedMemory  *self,
                  GError           **error)
{
  if (self->native_key == NULL)
    {
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_KEY_ERROR,
                   "Invalid shared memory key “%s”: a key is a non-empty UTF-8 string",
                   self->key != NULL && g_utf8_validate (self->key, -1, NULL) ? self->key : "(not UTF-8)");
      return FALSE;
    }
  if (self->fd >= 0)
    {
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED,
                   "Shared memory “%s” is already attached", self->key);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_attached (QipcSharedMemory       *self,
                QipcSharedMemoryError   code,
                GError                **error)
{
  if (self->fd >= 0)
    return TRUE;

  g_set_error (error, QIPC_SHARED_MEMORY_ERROR, code,
               "Shared memory “%s” is not attached", self->key);
  return FALSE;
}

/* Maps the whole file and points the object at it. Data pages are made
 * read-only for a read-only attachment, while the header (with the lock)
 * stays writable when the file descriptor allows it. */
static gboolean
map_segment (QipcSharedMemory        *self,
             QipcSharedMemoryAccess   access,
             gsize                    file_size,
             GError                 **error)
{
  int prot = self->fd_writable ? PROT_READ | PROT_WRITE : PROT_READ;
  guint8 *base = mmap (NULL, file_size, prot, MAP_SHARED, self->fd, 0);
  QipcShmHeader *header;

  if (base == MAP_FAILED)
    return set_error_from_errno (self, error, errno, "map"), FALSE;

  header = (QipcShmHeader *) base;
  if (header->magic != HEADER_MAGIC || header->version != HEADER_VERSION ||
      header->data_offset < sizeof *header || header->data_offset > file_size ||
      header->size > file_size - header->data_offset)
    {
      munmap (base, file_size);
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED,
                   "Shared memory “%s” (%s) is not a qipc segment or is damaged",
                   self->key, self->native_key);
      return FALSE;
    }

  if (access == QIPC_SHARED_MEMORY_ACCESS_READ_ONLY && self->fd_writable &&
      mprotect (base + header->data_offset, file_size - header->data_offset, PROT_READ) < 0)
    {
      munmap (base, file_size);
      return set_error_from_errno (self, error, errno, "map"), FALSE;
    }

  self->mapping = mapping_new (base, file_size);
  self->header = header;
  self->data = base + header->data_offset;
  self->size = header->size;
  self->access = access;
  return TRUE;
}

static void
init_header (QipcShmHeader *header,
             gsize          data_offset,
             gsize          size)
{
  pthread_mutexattr_t attr;

  header->magic = HEADER_MAGIC;
  header->version = HEADER_VERSION;
  header->data_offset = data_offset;
  header->size = size;
  header->generation = (guint64) g_random_int () << 32 | g_random_int ();

  pthread_mutexattr_init (&attr);
  pthread_mutexattr_setpshared (&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust (&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype (&attr, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init (&header->mutex, &attr);
  pthread_mutexattr_destroy (&attr);
}

/* Records the key in the header page for `qipc shm list`, which cannot
 * recover it from the file name. A key too long for the page is not
 * recorded; the segment works without it. */
static gboolean
write_key_record (QipcSharedMemory *self,
                  int               fd,
                  gsize             data_offset)
{
  gsize key_length = strlen (self->key);
  QipcShmKeyRecord record = { QIPC_SHM_KEY_MAGIC, (guint32) key_length, 0 };
  g_autofree guint8 *buffer = NULL;

  if (QIPC_SHM_KEY_RECORD_OFFSET + sizeof record + key_length > data_offset)
    return TRUE;

  buffer = g_malloc (sizeof record + key_length);
  memcpy (buffer, &record, sizeof record);
  memcpy (buffer + sizeof record, self->key, key_length);
  return pwrite (fd, buffer, sizeof record + key_length, QIPC_SHM_KEY_RECORD_OFFSET) ==
         (ssize_t) (sizeof record + key_length);
}

/* Writes a complete segment into a file nobody can see yet, holding the
 * user lock on it. Returns its descriptor, or -1 with @error set. */
static int
prepare_new_segment (QipcSharedMemory  *self,
                     gsize              size,
                     char             **tmp_path,
                     gsize             *file_size,
                     GError           **error)
{
  gsize data_offset = MAX ((gsize) sysconf (_SC_PAGESIZE), sizeof (QipcShmHeader));
  QipcShmHeader header = { 0 };
  int fd;

  *tmp_path = g_strdup_printf ("%s.new-%08x%08x", self->native_key, g_random_int (), g_random_int ());
  fd = open (*tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      set_error_from_errno (self, error, errno, "create");
      g_clear_pointer (tmp_path, g_free);
      return -1;
    }

  init_header (&header, data_offset, size);
  *file_size = data_offset + size;
  /* The user lock comes first: a sweep skips files that have a user. */
  if (ofd_lock (fd, F_RDLCK, FALSE) < 0 ||
      ftruncate (fd, data_offset + size) < 0 ||
      pwrite (fd, &header, sizeof header, 0) != (ssize_t) sizeof header ||
      !write_key_record (self, fd, data_offset) ||
      fchmod (fd, self->permissions) < 0)
    {
      set_error_from_errno (self, error, errno, "create");
      close (fd);
      unlink (*tmp_path);
      g_clear_pointer (tmp_path, g_free);
      return -1;
    }

  return fd;
}

/* Removes the segment file at @path if nobody holds the user lock on it.
 * Returns whether it was removed. */
static gboolean
remove_if_unused (const char *path)
{
  gboolean unused;
  int fd = open (path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

  if (fd < 0)
    return FALSE;
  unused = ofd_lock (fd, F_WRLCK, FALSE) == 0;
  if (unused)
    unlink_segment (path, fd);
  close (fd);
  return unused;
}

/* A segment whose last user crashed stays in SHM_DIR until someone
 * notices nobody uses it. Every create looks: this bounds the memory that
 * dead segments hold to what crashed since the last create anywhere.
 * Half-written files of a creator that crashed before publishing are
 * removed once they are a minute old (younger ones may still be in the
 * making), as are notification directories whose segment is gone. */
static void
sweep_dead_segments (void)
{
  g_autoptr(GDir) dir = g_dir_open (SHM_DIR, 0, NULL);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *name;

  if (dir == NULL)
    return;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      const char *dot;
      struct stat st;

      if (!g_str_has_prefix (name, "qipc-shm-"))
        continue;
      path = g_build_filename (SHM_DIR, name, NULL);
      dot = strchr (name, '.');
      if (dot == NULL)
        {
          remove_if_unused (path);
          continue;
        }

      if (lstat (path, &st) < 0 || now - st.st_mtime < 60)
        continue;
      if (g_str_has_prefix (dot, ".new-") && S_ISREG (st.st_mode))
        remove_if_unused (path);
      else if (g_str_has_suffix (dot, ".d") && S_ISDIR (st.st_mode))
        {
          g_autofree char *segment = g_strndup (path, strlen (SHM_DIR) + 1 + (dot - name));

          if (!g_file_test (segment, G_FILE_TEST_EXISTS))
            remove_notify_dir (path);
        }
    }
}

/* The name is taken. If nobody uses the segment behind it any more, it is
 * stale: remove it and return TRUE so the caller tries again. */
static gboolean
reclaim_if_stale (QipcSharedMemory  *self,
                  GError           **error)
{
  if (remove_if_unused (self->native_key) ||
      !g_file_test (self->native_key, G_FILE_TEST_EXISTS))
    return TRUE;

  g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS,
               "Cannot create shared memory “%s”: it already exists", self->key);
  return FALSE;
}

/**
 * qipc_shared_memory_create:
 * @self: a #QipcSharedMemory
 * @size: the size in bytes, from 1 to %QIPC_SHARED_MEMORY_MAX_SIZE
 * @access: how to map the segment
 * @error: return location for a #GError
 *
 * Creates a zeroed segment of @size bytes with the key of @self and
 * attaches to it. A segment left by users that are all gone (even killed)
 * is replaced; a live one is not
 * (%QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS). Pages are allocated when
 * first touched; see [method@SharedMemory.prefault].
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_shared_memory_create (QipcSharedMemory        *self,
                           gsize                    size,
                           QipcSharedMemoryAccess   access,
                           GError                 **error)
{
  g_autofree char *tmp_path = NULL;
  gboolean published = FALSE;
  gsize file_size;

  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_usable_key (self, error))
    return FALSE;
  if (size == 0 || size > QIPC_SHARED_MEMORY_MAX_SIZE)
    {
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE,
                   "Cannot create shared memory “%s” of %" G_GSIZE_FORMAT " bytes: "
                   "the size must be between 1 byte and 1 TiB", self->key, size);
      return FALSE;
    }

  sweep_dead_segments ();

  self->fd = prepare_new_segment (self, size, &tmp_path, &file_size, error);
  if (self->fd < 0)
    return FALSE;
  self->fd_writable = TRUE;

  /* link() publishes the finished segment atomically, and fails if the
   * name is taken, live or stale. */
  for (guint attempt = 0; attempt < 100 && !published; attempt++)
    {
      if (link (tmp_path, self->native_key) == 0)
        published = TRUE;
      else if (errno != EEXIST)
        {
          set_error_from_errno (self, error, errno, "create");
          break;
        }
      else if (!reclaim_if_stale (self, error))
        break;
    }
  unlink (tmp_path);

  if (!published)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED,
                     "Cannot create shared memory “%s”: the name keeps changing hands", self->key);
      forget_attachment (self);
      return FALSE;
    }

  if (!map_segment (self, access, file_size, error) ||
      !start_listening (self, error))
    {
      qipc_shared_memory_detach (self);
      return FALSE;
    }

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIZE]);
  return TRUE;
}

/* Opens the segment file and registers as a user. Returns FALSE with
 * @error unset when the file vanished under us and the caller should try
 * again. */
static gboolean
open_as_user (QipcSharedMemory        *self,
              QipcSharedMemoryAccess   access,
              struct stat             *st,
              GError                 **error)
{
  self->fd = open (self->native_key, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  self->fd_writable = self->fd >= 0;
  /* Without write permission a reader can still map the data, but cannot
   * take the lock, which lives in the segment. */
  if (self->fd < 0 && errno == EACCES && access == QIPC_SHARED_MEMORY_ACCESS_READ_ONLY)
    self->fd = open (self->native_key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (self->fd < 0)
    {
      if (errno == ENOENT)
        g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND,
                     "Cannot attach to shared memory “%s”: no such segment", self->key);
      else
        set_error_from_errno (self, error, errno, "attach to");
      return FALSE;
    }

  /* Waits only while a last user or a creator is unlinking this file. */
  if (ofd_lock (self->fd, F_RDLCK, TRUE) < 0 || fstat (self->fd, st) < 0)
    {
      set_error_from_errno (self, error, errno, "attach to");
      forget_attachment (self);
      return FALSE;
    }

  if (st->st_nlink == 0)
    {
      forget_attachment (self);
      return FALSE;
    }

  return TRUE;
}

/**
 * qipc_shared_memory_attach:
 * @self: a #QipcSharedMemory
 * @access: how to map the segment
 * @error: return location for a #GError
 *
 * Attaches to the live segment with the key of @self. A segment whose
 * users have all gone, crashed ones included, no longer exists
 * (%QIPC_SHARED_MEMORY_ERROR_NOT_FOUND), and its memory is freed.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_shared_memory_attach (QipcSharedMemory        *self,
                           QipcSharedMemoryAccess   access,
                           GError                 **error)
{
  struct stat st;

  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_usable_key (self, error))
    return FALSE;

  for (guint attempt = 0; self->fd < 0; attempt++)
    {
      GError *local_error = NULL;

      if (attempt == 100)
        {
          g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED,
                       "Cannot attach to shared memory “%s”: it keeps being replaced", self->key);
          return FALSE;
        }
      if (!open_as_user (self, access, &st, &local_error) && local_error != NULL)
        {
          g_propagate_error (error, local_error);
          return FALSE;
        }
    }

  /* Being the only user means every other user is gone: the segment is
   * dead, whatever is left of it. */
  if ((self->fd_writable && ofd_lock (self->fd, F_WRLCK, FALSE) == 0) ||
      (!self->fd_writable && !ofd_has_other_users (self->fd)))
    {
      if (self->fd_writable)
        unlink_segment (self->native_key, self->fd);
      forget_attachment (self);
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND,
                   "Cannot attach to shared memory “%s”: every process using it has exited",
                   self->key);
      return FALSE;
    }

  if (st.st_size < (off_t) sizeof (QipcShmHeader) ||
      !map_segment (self, access, st.st_size, error) ||
      !start_listening (self, error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED,
                     "Shared memory “%s” (%s) is not a qipc segment", self->key, self->native_key);
      qipc_shared_memory_detach (self);
      return FALSE;
    }

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIZE]);
  return TRUE;
}

/**
 * qipc_shared_memory_detach:
 * @self: a #QipcSharedMemory
 *
 * Detaches from the segment, releasing the lock if this object holds it.
 * When this was the last user, the segment is destroyed.
 *
 * Returns: %TRUE if the object was attached
 */
gboolean
qipc_shared_memory_detach (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);

  if (self->fd < 0)
    return FALSE;

  if (self->locked)
    pthread_mutex_unlock (&self->header->mutex);

  /* Leave first, then look. Two last users that each tried the write lock
   * while still holding their read lock would each see the other's, and
   * both would close, leaving the segment with nobody. With ours dropped,
   * a failed try means that someone else holds a lock: a user, who will
   * look in turn when it leaves, or a process that got the write lock
   * and removes the segment. So the last to leave gets the write lock. */
  if (self->fd_writable)
    {
      ofd_lock (self->fd, F_UNLCK, FALSE);
      if (ofd_lock (self->fd, F_WRLCK, FALSE) == 0)
        unlink_segment (self->native_key, self->fd);
    }

  if (G_UNLIKELY (detach_hook != NULL))
    detach_hook (self, detach_hook_data);

  forget_attachment (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIZE]);
  return TRUE;
}

void
_qipc_shared_memory_set_detach_hook (QipcSharedMemoryDetachHook hook,
                                     gpointer                   user_data)
{
  detach_hook = hook;
  detach_hook_data = user_data;
}

/**
 * qipc_shared_memory_is_attached:
 * @self: a #QipcSharedMemory
 *
 * Tells whether @self is attached to a segment.
 *
 * Returns: whether @self is attached to a segment
 */
gboolean
qipc_shared_memory_is_attached (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);

  return self->fd >= 0;
}

/**
 * qipc_shared_memory_get_access:
 * @self: a #QipcSharedMemory
 *
 * Gets how the attached segment is mapped.
 *
 * Returns: how the segment is mapped; meaningless when not attached
 */
QipcSharedMemoryAccess
qipc_shared_memory_get_access (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);

  return self->access;
}

/**
 * qipc_shared_memory_get_size: (get-property size)
 * @self: a #QipcSharedMemory
 *
 * Gets the size of the attached segment.
 *
 * Returns: the size of the attached segment in bytes, 0 when not attached
 */
gsize
qipc_shared_memory_get_size (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), 0);

  return self->size;
}

/**
 * qipc_shared_memory_get_data: (skip)
 * @self: a #QipcSharedMemory
 *
 * Gets the address of the segment in this process. Writing through it on
 * a read-only attachment faults. Bindings use [method@SharedMemory.read]
 * and [method@SharedMemory.write] instead, since a raw address means
 * nothing to them.
 *
 * Returns: (nullable): the first byte of the segment, %NULL when not attached
 */
gpointer
qipc_shared_memory_get_data (QipcSharedMemory *self)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), NULL);

  return self->data;
}

static gboolean
check_range (QipcSharedMemory  *self,
             gsize              offset,
             gsize              length,
             GError           **error)
{
  if (offset <= self->size && length <= self->size - offset)
    return TRUE;

  g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE,
               "Shared memory “%s”: %" G_GSIZE_FORMAT " bytes at offset %" G_GSIZE_FORMAT
               " are outside the segment of %" G_GSIZE_FORMAT " bytes",
               self->key, length, offset, self->size);
  return FALSE;
}

/**
 * qipc_shared_memory_read:
 * @self: a #QipcSharedMemory
 * @offset: where to start, in bytes from the start of the segment
 * @length: how many bytes to copy
 * @error: return location for a #GError
 *
 * Copies bytes out of the segment. Take the lock around it when writers
 * may be at work.
 *
 * Returns: (transfer full): the bytes, or %NULL with @error set
 */
GBytes *
qipc_shared_memory_read (QipcSharedMemory  *self,
                         gsize              offset,
                         gsize              length,
                         GError           **error)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_attached (self, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND, error) ||
      !check_range (self, offset, length, error))
    return NULL;

  return g_bytes_new (self->data + offset, length);
}

/**
 * qipc_shared_memory_write:
 * @self: a #QipcSharedMemory
 * @offset: where to start, in bytes from the start of the segment
 * @bytes: what to copy in
 * @error: return location for a #GError
 *
 * Copies @bytes into the segment. Fails with
 * %QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED on a read-only attachment.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_shared_memory_write (QipcSharedMemory  *self,
                          gsize              offset,
                          GBytes            *bytes,
                          GError           **error)
{
  gsize length;
  const guint8 *source;

  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_attached (self, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND, error))
    return FALSE;
  if (self->access == QIPC_SHARED_MEMORY_ACCESS_READ_ONLY)
    {
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED,
                   "Cannot write to shared memory “%s”: it is attached read-only", self->key);
      return FALSE;
    }

  source = g_bytes_get_data (bytes, &length);
  if (!check_range (self, offset, length, error))
    return FALSE;

  if (length > 0)
    memcpy (self->data + offset, source, length);
  return TRUE;
}

/**
 * qipc_shared_memory_prefault:
 * @self: a #QipcSharedMemory
 * @error: return location for a #GError
 *
 * Allocates every page of the segment now and maps it into this process,
 * so that later accesses take no page faults. On a fresh segment this
 * makes the first fill about as fast as writing warm memory, and a system
 * out of memory fails here with %QIPC_SHARED_MEMORY_ERROR_OUT_OF_RESOURCES
 * rather than with a `SIGBUS` at first touch.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_shared_memory_prefault (QipcSharedMemory  *self,
                             GError           **error)
{
  int advice;

  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_attached (self, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND, error))
    return FALSE;

  if (self->fd_writable)
    {
      int r = posix_fallocate (self->fd, self->header->data_offset, self->size);

      if (r != 0)
        return set_error_from_errno (self, error, r, "allocate"), FALSE;
    }

#ifdef MADV_POPULATE_WRITE
  advice = self->access == QIPC_SHARED_MEMORY_ACCESS_READ_WRITE ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
#else
  advice = MADV_WILLNEED;
#endif
  /* Kernels before 5.14 do not know MADV_POPULATE_*: the pages are
   * allocated all the same, only the mapping faults stay. */
  if (madvise (self->data, self->size, advice) < 0 && errno != EINVAL)
    return set_error_from_errno (self, error, errno, "prefault"), FALSE;

  return TRUE;
}

static gboolean
check_lockable (QipcSharedMemory  *self,
                GError           **error)
{
  if (!check_attached (self, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR, error))
    return FALSE;
  if (self->fd_writable)
    return TRUE;

  g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
               "Cannot lock shared memory “%s”: this process may only read the segment, "
               "and the lock lives in it", self->key);
  return FALSE;
}

/* Finishes a pthread_mutex_*lock() call: TRUE when the lock is ours,
 * FALSE with @error unset on timeout/busy, FALSE with @error set else. */
static gboolean
took_lock (QipcSharedMemory  *self,
           int                r,
           GError           **error)
{
  gboolean recovered = self->recovered_by_waiter;

  switch (r)
    {
    case 0:
      break;
    case EOWNERDEAD:
      pthread_mutex_consistent (&self->header->mutex);
      recovered = TRUE;
      break;
    case EBUSY:
    case ETIMEDOUT:
      return FALSE;
    case EDEADLK:
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
                   "Cannot lock shared memory “%s”: this thread already holds the lock", self->key);
      return FALSE;
    default:
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
                   "Cannot lock shared memory “%s”: %s", self->key, g_strerror (r));
      return FALSE;
    }

  self->locked = TRUE;
  self->recovered_by_waiter = FALSE;
  if (recovered)
    g_signal_emit (self, signals[LOCK_RECOVERED], 0);
  return TRUE;
}

/**
 * qipc_shared_memory_lock:
 * @self: a #QipcSharedMemory
 * @error: return location for a #GError
 *
 * Takes the lock of the segment, blocking the calling thread while
 * another thread or process holds it. Costs no system call when the lock
 * is free. If the previous holder died holding it,
 * [signal@SharedMemory::lock-recovered] is emitted before this returns.
 *
 * Returns: %TRUE when locked, %FALSE with @error set
 */
gboolean
qipc_shared_memory_lock (QipcSharedMemory  *self,
                         GError           **error)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_lockable (self, error))
    return FALSE;

  return took_lock (self, pthread_mutex_lock (&self->header->mutex), error);
}

static int
lock_with_timeout (pthread_mutex_t *mutex,
                   int              timeout_ms)
{
  struct timespec deadline;

  if (timeout_ms < 0)
    return pthread_mutex_lock (mutex);
  if (timeout_ms == 0)
    return pthread_mutex_trylock (mutex);

  clock_gettime (CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
  if (deadline.tv_nsec >= 1000000000)
    {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
  return pthread_mutex_clocklock (mutex, CLOCK_MONOTONIC, &deadline);
}

/**
 * qipc_shared_memory_try_lock:
 * @self: a #QipcSharedMemory
 * @timeout_ms: how long to wait in milliseconds: 0 not at all, -1 forever
 * @error: return location for a #GError
 *
 * Takes the lock if it becomes free within @timeout_ms.
 *
 * Returns: %TRUE when locked; %FALSE with @error unset when the time ran
 *   out, or with @error set on failure
 */
gboolean
qipc_shared_memory_try_lock (QipcSharedMemory  *self,
                             int                timeout_ms,
                             GError           **error)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_lockable (self, error))
    return FALSE;

  return took_lock (self, lock_with_timeout (&self->header->mutex, timeout_ms), error);
}

/**
 * qipc_shared_memory_unlock:
 * @self: a #QipcSharedMemory
 * @error: return location for a #GError
 *
 * Releases the lock, which this thread must hold.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_shared_memory_unlock (QipcSharedMemory  *self,
                           GError           **error)
{
  int r;

  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_lockable (self, error))
    return FALSE;

  r = pthread_mutex_unlock (&self->header->mutex);
  if (r != 0)
    {
      g_set_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
                   "Cannot unlock shared memory “%s”: %s", self->key,
                   r == EPERM ? "this thread does not hold the lock" : g_strerror (r));
      return FALSE;
    }

  self->locked = FALSE;
  return TRUE;
}

/* The worker of lock_async() waits until the lock is free, by taking and
 * dropping it; the lock itself is then taken on the caller's thread,
 * since a robust mutex belongs to the thread that locked it. */
static void
wait_for_free_lock_in_thread (GTask        *task,
                              gpointer      source_object,
                              gpointer      task_data,
                              GCancellable *cancellable)
{
  Mapping *mapping = task_data;
  pthread_mutex_t *mutex = &((QipcShmHeader *) mapping->base)->mutex;
  int slice = cancellable != NULL ? ASYNC_SLICE_MS : -1;

  while (!g_cancellable_is_cancelled (cancellable))
    {
      int r = lock_with_timeout (mutex, slice);
      gboolean recovered = r == EOWNERDEAD;

      if (r == ETIMEDOUT)
        continue;
      if (r != 0 && !recovered)
        {
          g_task_return_new_error (task, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
                                   "Cannot lock shared memory: %s", g_strerror (r));
          return;
        }
      if (recovered)
        pthread_mutex_consistent (mutex);
      pthread_mutex_unlock (mutex);
      g_task_return_int (task, recovered);
      return;
    }

  g_task_return_error_if_cancelled (task);
}

static void start_waiting_for_lock (GTask *task);

static void
lock_became_free_cb (GObject      *source_object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  QipcSharedMemory *self = QIPC_SHARED_MEMORY (source_object);
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  gssize recovered = g_task_propagate_int (G_TASK (result), &error);

  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (self->fd < 0)
    {
      g_task_return_new_error (task, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
                               "Shared memory “%s” was detached while waiting for its lock",
                               self->key);
      return;
    }

  self->recovered_by_waiter |= recovered > 0;
  if (took_lock (self, pthread_mutex_trylock (&self->header->mutex), &error))
    g_task_return_boolean (task, TRUE);
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    start_waiting_for_lock (g_steal_pointer (&task));
}

static void
start_waiting_for_lock (GTask *task)
{
  QipcSharedMemory *self = g_task_get_source_object (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr(GTask) waiter = g_task_new (self, cancellable, lock_became_free_cb, task);

  g_task_set_source_tag (waiter, wait_for_free_lock_in_thread);
  g_task_set_task_data (waiter, g_atomic_rc_box_acquire (self->mapping), (GDestroyNotify) mapping_unref);
  g_task_set_return_on_cancel (waiter, TRUE);
  g_task_run_in_thread (waiter, wait_for_free_lock_in_thread);
}

/**
 * qipc_shared_memory_lock_async:
 * @self: a #QipcSharedMemory
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the lock is taken, fails, or the
 *   wait is cancelled
 * @user_data: data for @callback
 *
 * Takes the lock without blocking the calling thread. @callback runs on
 * the thread-default main context of the caller, and the lock then
 * belongs to the thread that runs that context. Cancelling completes the
 * call with %G_IO_ERROR_CANCELLED at once, without the lock.
 */
void
qipc_shared_memory_lock_async (QipcSharedMemory    *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;

  g_return_if_fail (QIPC_IS_SHARED_MEMORY (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, qipc_shared_memory_lock_async);

  if (!check_lockable (self, &error))
    g_task_return_error (task, error);
  else if (took_lock (self, pthread_mutex_trylock (&self->header->mutex), &error))
    g_task_return_boolean (task, TRUE);
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    start_waiting_for_lock (g_steal_pointer (&task));
}

/**
 * qipc_shared_memory_lock_finish:
 * @self: a #QipcSharedMemory
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@SharedMemory.lock_async].
 *
 * Returns: %TRUE when the lock is now held, %FALSE with @error set
 */
gboolean
qipc_shared_memory_lock_finish (QipcSharedMemory  *self,
                                GAsyncResult      *result,
                                GError           **error)
{
  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == qipc_shared_memory_lock_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * qipc_shared_memory_notify_changed:
 * @self: a #QipcSharedMemory
 * @error: return location for a #GError
 *
 * Wakes every other object attached to this segment, in this process and
 * others; each then emits [signal@SharedMemory::changed] on its own main
 * context. Never blocks. Call it after unlocking, so that the woken
 * readers find the lock free.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
qipc_shared_memory_notify_changed (QipcSharedMemory  *self,
                           GError           **error)
{
  DIR *dir;
  struct dirent *entry;
  const char *own = NULL;

  g_return_val_if_fail (QIPC_IS_SHARED_MEMORY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_attached (self, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND, error))
    return FALSE;

  dir = opendir (self->notify_dir);
  if (dir == NULL)
    return set_error_from_errno (self, error, errno, "notify users of"), FALSE;

  own = strrchr (self->fifo_path, '/') + 1;
  while ((entry = readdir (dir)) != NULL)
    {
      int fd;

      if (entry->d_name[0] == '.' || strcmp (entry->d_name, own) == 0)
        continue;

      fd = openat (dirfd (dir), entry->d_name, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0)
        {
          /* No reader: its process is gone without detaching. */
          if (errno == ENXIO)
            unlinkat (dirfd (dir), entry->d_name, 0);
          continue;
        }
      /* A full FIFO already has a wake-up pending. */
      if (write (fd, "!", 1) < 0 && errno != EAGAIN)
        g_debug ("Cannot notify %s: %s", entry->d_name, g_strerror (errno));
      close (fd);
    }
  closedir (dir);

  return TRUE;
}
