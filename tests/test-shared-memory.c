/* test-shared-memory.c: QipcSharedMemory, in one and several processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "test-utils.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static QipcSharedMemory *
create_segment (const char *key,
                gsize       size)
{
  g_autoptr(GError) error = NULL;
  QipcSharedMemory *shm = qipc_shared_memory_new (key);

  g_assert_true (qipc_shared_memory_create (shm, size, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_no_error (error);
  return shm;
}

static QipcSharedMemory *
attach_segment (const char             *key,
                QipcSharedMemoryAccess  access)
{
  g_autoptr(GError) error = NULL;
  QipcSharedMemory *shm = qipc_shared_memory_new (key);

  g_assert_true (qipc_shared_memory_attach (shm, access, &error));
  g_assert_no_error (error);
  return shm;
}

static void
write_text (QipcSharedMemory *shm,
            const char       *text)
{
  g_autoptr(GBytes) bytes = g_bytes_new (text, strlen (text));
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_shared_memory_write (shm, 0, bytes, &error));
  g_assert_no_error (error);
}

static gboolean
all_zero (QipcSharedMemory *shm)
{
  const guint8 *data = qipc_shared_memory_get_data (shm);

  for (gsize i = 0; i < qipc_shared_memory_get_size (shm); i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

static void
test_create_attach (void)
{
  g_autofree char *key = qipc_test_key ("create-attach");
  g_autoptr(QipcSharedMemory) writer = create_segment (key, 10000);
  g_autoptr(QipcSharedMemory) reader = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_assert_true (qipc_shared_memory_is_attached (writer));
  g_assert_cmpuint (qipc_shared_memory_get_size (writer), ==, 10000);
  g_assert_true (all_zero (writer));
  g_assert_true (g_str_has_prefix (qipc_shared_memory_get_native_key (writer), "/dev/shm/qipc-shm-"));
  g_assert_cmpint (stat (qipc_shared_memory_get_native_key (writer), &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0600);

  /* The key is recorded at offset 1024 of the header page, after a magic
   * ("QIPCKEY1") and its length, for `qipc shm list`. */
  {
    int fd = open (qipc_shared_memory_get_native_key (writer), O_RDONLY);
    char record[1024];
    guint32 length;

    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpint (pread (fd, record, sizeof record, 1024), ==, sizeof record);
    close (fd);
    g_assert_cmpmem (record, 8, "QIPCKEY1", 8);
    memcpy (&length, record + 8, sizeof length);
    g_assert_cmpmem (record + 16, length, key, strlen (key));
  }

  write_text (writer, "hello");
  reader = attach_segment (key, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  g_assert_cmpuint (qipc_shared_memory_get_size (reader), ==, 10000);
  g_assert_cmpint (qipc_shared_memory_get_access (reader), ==, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  bytes = qipc_shared_memory_read (reader, 1, 4, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), 4, "ello", 4);
  g_assert_cmpmem (qipc_shared_memory_get_data (reader), 5, "hello", 5);
}

static void
test_cross_process (void)
{
  g_autofree char *key = qipc_test_key ("cross-process");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 64);
  g_autoptr(QipcTestChild) child = NULL;

  write_text (shm, "from the parent");
  child = qipc_test_child_spawn ("shm-read", key, "15", NULL);
  qipc_test_child_expect (child, "from the parent");
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
}

static void
test_permissions (void)
{
  g_autofree char *key = qipc_test_key ("mode");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;
  mode_t old_umask = umask (0077);
  struct stat st;

  g_assert_cmpuint (qipc_shared_memory_get_permissions (shm), ==, 0600);
  qipc_shared_memory_set_permissions (shm, 0644);
  /* The umask does not narrow what the caller asked for. */
  g_assert_true (qipc_shared_memory_create (shm, 1, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  umask (old_umask);
  g_assert_no_error (error);
  g_assert_cmpint (stat (qipc_shared_memory_get_native_key (shm), &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0644);
}

static void
test_native_keys (void)
{
  const char *keys[] = { "../../etc/passwd", "a/b", "a/b/", "\x01", "é", "a b", "A/B" };
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (keys[i]);
      const char *native = qipc_shared_memory_get_native_key (shm);
      const char *name = native + strlen ("/dev/shm/");

      g_assert_true (g_str_has_prefix (native, "/dev/shm/qipc-shm-"));
      for (const char *p = name + strlen ("qipc-shm-"); *p; p++)
        g_assert_true (g_ascii_isxdigit (*p));
      g_assert_false (g_hash_table_contains (seen, native));
      g_hash_table_add (seen, g_strdup (native));
    }
}

static void
test_last_detach_removes (void)
{
  g_autofree char *key = qipc_test_key ("last-detach");
  g_autoptr(QipcSharedMemory) first = create_segment (key, 100);
  g_autoptr(QipcSharedMemory) second = attach_segment (key, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE);
  g_autofree char *path = g_strdup (qipc_shared_memory_get_native_key (first));
  g_autoptr(QipcSharedMemory) again = NULL;
  g_autoptr(GError) error = NULL;

  write_text (second, "data");
  g_assert_true (qipc_shared_memory_detach (first));
  g_assert_false (qipc_shared_memory_detach (first));
  g_assert_false (qipc_shared_memory_is_attached (first));
  g_assert_cmpuint (qipc_shared_memory_get_size (first), ==, 0);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));

  g_assert_true (qipc_shared_memory_detach (second));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  again = qipc_shared_memory_new (key);
  g_assert_false (qipc_shared_memory_attach (again, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND);
}

/* Qt leaves a killed process's segment behind; here it is gone with its
 * last user. */
static void
test_stale_after_kill_attach (void)
{
  g_autofree char *key = qipc_test_key ("stale-attach");
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-create", key, "4096", "old data", NULL);
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "ready");
  qipc_test_child_kill (child);
  g_assert_true (g_file_test (qipc_shared_memory_get_native_key (shm), G_FILE_TEST_EXISTS));

  g_assert_false (qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* Its memory went back to the system. */
  g_assert_false (g_file_test (qipc_shared_memory_get_native_key (shm), G_FILE_TEST_EXISTS));

  g_assert_true (qipc_shared_memory_create (shm, 4096, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_no_error (error);
  g_assert_true (all_zero (shm));
}

static void
test_stale_after_kill_create (void)
{
  g_autofree char *key = qipc_test_key ("stale-create");
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-create", key, "4096", "old data", NULL);
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autofree char *prefix = NULL;
  const char *name;
  guint leftovers = 0;

  qipc_test_child_expect (child, "ready");
  qipc_test_child_kill (child);

  g_assert_true (qipc_shared_memory_create (shm, 8192, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (qipc_shared_memory_get_size (shm), ==, 8192);
  g_assert_true (all_zero (shm));

  /* The dead segment's notification directory went with it. */
  prefix = g_path_get_basename (qipc_shared_memory_get_native_key (shm));
  dir = g_dir_open ("/dev/shm", 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix) && g_str_has_suffix (name, ".d"))
      leftovers++;
  g_assert_cmpuint (leftovers, ==, 1);
}

/* The segment of a killed last user is freed when any process creates
 * any segment, not only when its own key is used again. */
static void
test_swept_after_kill (void)
{
  g_autofree char *key = qipc_test_key ("swept");
  g_autofree char *other_key = qipc_test_key ("sweeper");
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-create", key, "4096", "old data", NULL);
  g_autoptr(QipcSharedMemory) dead = qipc_shared_memory_new (key);
  g_autoptr(QipcSharedMemory) live = NULL;
  g_autoptr(QipcSharedMemory) other = NULL;

  qipc_test_child_expect (child, "ready");
  live = attach_segment (key, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  qipc_test_child_kill (child);

  /* Still in use by this process: a sweep leaves it alone. */
  other = create_segment (other_key, 16);
  g_assert_true (g_file_test (qipc_shared_memory_get_native_key (dead), G_FILE_TEST_EXISTS));
  g_assert_cmpmem (qipc_shared_memory_get_data (live), 8, "old data", 8);

  /* Detaching the last user removes it right away. */
  g_clear_object (&live);
  g_assert_false (g_file_test (qipc_shared_memory_get_native_key (dead), G_FILE_TEST_EXISTS));

  /* Killed as the last user: gone at the next create of any key. */
  g_clear_object (&other);
  g_clear_pointer (&child, qipc_test_child_free);
  child = qipc_test_child_spawn ("shm-create", key, "4096", "old data", NULL);
  qipc_test_child_expect (child, "ready");
  qipc_test_child_kill (child);
  g_assert_true (g_file_test (qipc_shared_memory_get_native_key (dead), G_FILE_TEST_EXISTS));
  other = create_segment (other_key, 16);
  g_assert_false (g_file_test (qipc_shared_memory_get_native_key (dead), G_FILE_TEST_EXISTS));
}

/* Eight processes create, attach to and leave one key as fast as they
 * can: nobody sees an error other than "exists" or "gone", nobody maps a
 * half-made segment, and when all are done nothing is left. */
static void
test_concurrent_churn (void)
{
  g_autofree char *key = qipc_test_key ("churn");
  g_autoptr(QipcSharedMemory) probe = qipc_shared_memory_new (key);
  QipcTestChild *children[8];

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    children[i] = qipc_test_child_spawn ("shm-churn", key, "300", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      qipc_test_child_expect (children[i], "ok");
      g_assert_cmpint (qipc_test_child_wait (children[i]), ==, 0);
      qipc_test_child_free (children[i]);
    }

  g_assert_false (g_file_test (qipc_shared_memory_get_native_key (probe), G_FILE_TEST_EXISTS));
}

static void
test_live_not_replaced (void)
{
  g_autofree char *key = qipc_test_key ("live");
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-create", key, "4096", "child data", NULL);
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "ready");
  g_assert_false (qipc_shared_memory_create (shm, 4096, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS);
  g_clear_error (&error);

  g_assert_true (qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (qipc_shared_memory_get_data (shm), 10, "child data", 10);

  /* Now this process is a user: the segment outlives the creator. */
  qipc_test_child_kill (child);
  g_assert_cmpmem (qipc_shared_memory_get_data (shm), 10, "child data", 10);
}

static void
test_read_only_write_error (void)
{
  g_autofree char *key = qipc_test_key ("read-only");
  g_autoptr(QipcSharedMemory) owner = create_segment (key, 16);
  g_autoptr(QipcSharedMemory) reader = attach_segment (key, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  g_autoptr(GBytes) bytes = g_bytes_new_static ("x", 1);
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_shared_memory_write (reader, 0, bytes, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED);
  g_assert_true (all_zero (owner));
}

/* Writing through the pointer of a read-only attachment is stopped by the
 * MMU, not by a convention. */
static void
test_read_only_mapping (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *key = qipc_test_key ("read-only-map");
      G_GNUC_UNUSED g_autoptr(QipcSharedMemory) owner = create_segment (key, 16);
      g_autoptr(QipcSharedMemory) reader = attach_segment (key, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
      volatile char *data = qipc_shared_memory_get_data (reader);

      g_printerr ("writing\n");
      data[0] = 'x';
      g_printerr ("written\n");
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*writing*");
  g_test_trap_assert_stderr_unmatched ("*written*");
}

static guint recovered_count;

static void
on_lock_recovered (QipcSharedMemory *shm,
                   gpointer          user_data)
{
  recovered_count++;
}

static void
test_lock_basic (void)
{
  g_autofree char *key = qipc_test_key ("lock");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_shared_memory_lock (shm, &error));
  g_assert_no_error (error);
  g_assert_false (qipc_shared_memory_lock (shm, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR);
  g_clear_error (&error);
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
  g_assert_false (qipc_shared_memory_unlock (shm, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR);
  g_clear_error (&error);
  g_assert_true (qipc_shared_memory_try_lock (shm, 0, &error));
  g_assert_no_error (error);
  /* Detaching gives the lock back. */
  g_assert_true (qipc_shared_memory_detach (shm));
}

static void
test_lock_contended (void)
{
  g_autofree char *key = qipc_test_key ("lock-contended");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-lock-until-input", key, NULL);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "locked");
  g_assert_false (qipc_shared_memory_try_lock (shm, 0, &error));
  g_assert_no_error (error);
  g_assert_false (qipc_shared_memory_try_lock (shm, 30, &error));
  g_assert_no_error (error);

  qipc_test_child_send (child, "unlock");
  qipc_test_child_expect (child, "unlocked");
  g_assert_true (qipc_shared_memory_try_lock (shm, 10000, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
}

static void
test_lock_recover_after_crash (void)
{
  g_autofree char *key = qipc_test_key ("lock-crash");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-lock", key, NULL);
  g_autoptr(GError) error = NULL;

  g_signal_connect (shm, "lock-recovered", G_CALLBACK (on_lock_recovered), NULL);
  recovered_count = 0;

  qipc_test_child_expect (child, "locked");
  g_assert_false (qipc_shared_memory_try_lock (shm, 0, &error));
  qipc_test_child_kill (child);

  g_assert_true (qipc_shared_memory_lock (shm, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (recovered_count, ==, 1);
  g_assert_true (qipc_shared_memory_unlock (shm, &error));

  /* Recovered once; afterwards the lock is an ordinary one again. */
  g_assert_true (qipc_shared_memory_lock (shm, &error));
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (recovered_count, ==, 1);
}

static gboolean
count_tick (gpointer user_data)
{
  (*(guint *) user_data)++;
  return G_SOURCE_CONTINUE;
}

static void
test_lock_async (void)
{
  g_autofree char *key = qipc_test_key ("lock-async");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-lock-until-input", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint ticks = 0;
  guint tick_source;

  qipc_test_child_expect (child, "locked");
  qipc_shared_memory_lock_async (shm, NULL, qipc_test_store_result, &result);

  /* The main loop keeps running while the lock is busy. */
  tick_source = g_timeout_add (1, count_tick, &ticks);
  while (ticks < 5)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (result);

  qipc_test_child_send (child, "unlock");
  qipc_test_wait_for_result (&result);
  g_source_remove (tick_source);
  g_assert_true (qipc_shared_memory_lock_finish (shm, result, &error));
  g_assert_no_error (error);
  /* The lock belongs to this thread now. */
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
  g_assert_no_error (error);
}

static void
test_lock_async_free (void)
{
  g_autofree char *key = qipc_test_key ("lock-async-free");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  qipc_shared_memory_lock_async (shm, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_assert_true (qipc_shared_memory_lock_finish (shm, result, &error));
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
  g_assert_no_error (error);
}

static void
test_lock_async_recovered (void)
{
  g_autofree char *key = qipc_test_key ("lock-async-crash");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-lock", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_signal_connect (shm, "lock-recovered", G_CALLBACK (on_lock_recovered), NULL);
  recovered_count = 0;

  qipc_test_child_expect (child, "locked");
  qipc_shared_memory_lock_async (shm, NULL, qipc_test_store_result, &result);
  qipc_test_child_kill (child);
  qipc_test_wait_for_result (&result);
  g_assert_true (qipc_shared_memory_lock_finish (shm, result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (recovered_count, ==, 1);
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
}

static void
test_lock_async_cancel (void)
{
  g_autofree char *key = qipc_test_key ("lock-async-cancel");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-lock-until-input", key, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "locked");
  qipc_shared_memory_lock_async (shm, cancellable, qipc_test_store_result, &result);
  g_timeout_add (30, qipc_test_cancel_cb, cancellable);
  qipc_test_wait_for_result (&result);
  g_assert_false (qipc_shared_memory_lock_finish (shm, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* Cancelled means not locked: the child can still unlock and we lock. */
  qipc_test_child_send (child, "unlock");
  qipc_test_child_expect (child, "unlocked");
  g_assert_true (qipc_shared_memory_try_lock (shm, 10000, &error));
  g_assert_true (qipc_shared_memory_unlock (shm, &error));
  g_assert_no_error (error);

  /* The segment is detached (at unref) while the cancelled worker may
   * still wait inside its mapping: the mapping outlives the attachment. */
  qipc_test_child_kill (child);
}

static guint changed_count;

static void
on_changed (QipcSharedMemory *shm,
            gpointer          user_data)
{
  changed_count++;
}

static void
test_notify_cross_process (void)
{
  g_autofree char *key = qipc_test_key ("notify");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-wait-changed", key, "2", NULL);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "attached");
  g_assert_true (qipc_shared_memory_notify_changed (shm, &error));
  g_assert_no_error (error);
  qipc_test_child_expect (child, "changed");
  g_assert_true (qipc_shared_memory_notify_changed (shm, &error));
  qipc_test_child_expect (child, "changed");
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
}

static void
test_notify_in_process (void)
{
  g_autofree char *key = qipc_test_key ("notify-local");
  g_autoptr(QipcSharedMemory) notifier = create_segment (key, 16);
  g_autoptr(QipcSharedMemory) listener = attach_segment (key, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  g_autoptr(GError) error = NULL;
  guint notifier_changes = 0;
  guint ticks = 0;
  guint tick_source;

  g_signal_connect (listener, "changed", G_CALLBACK (on_changed), NULL);
  g_signal_connect_swapped (notifier, "changed", G_CALLBACK (count_tick), &notifier_changes);
  changed_count = 0;

  g_assert_true (qipc_shared_memory_notify_changed (notifier, &error));
  g_assert_no_error (error);
  while (changed_count == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (changed_count, ==, 1);

  /* Give a stray self-notification every chance to show up. */
  tick_source = g_timeout_add (1, count_tick, &ticks);
  while (ticks < 20)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick_source);
  g_assert_cmpuint (notifier_changes, ==, 0);
  g_assert_cmpuint (changed_count, ==, 1);
}

static guint
count_fifos (QipcSharedMemory *shm)
{
  g_autofree char *prefix = g_path_get_basename (qipc_shared_memory_get_native_key (shm));
  g_autoptr(GDir) shm_dir = g_dir_open ("/dev/shm", 0, NULL);
  const char *name;
  guint count = 0;

  while ((name = g_dir_read_name (shm_dir)) != NULL)
    if (g_str_has_prefix (name, prefix) && g_str_has_suffix (name, ".d"))
      {
        g_autofree char *path = g_build_filename ("/dev/shm", name, NULL);
        g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);

        while (g_dir_read_name (dir) != NULL)
          count++;
      }
  return count;
}

static void
test_notify_forgets_dead (void)
{
  g_autofree char *key = qipc_test_key ("notify-dead");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 16);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("shm-attach", key, NULL);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "attached");
  g_assert_cmpuint (count_fifos (shm), ==, 2);
  qipc_test_child_kill (child);
  g_assert_true (qipc_shared_memory_notify_changed (shm, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_fifos (shm), ==, 1);
}

static void
test_prefault (void)
{
  g_autofree char *key = qipc_test_key ("prefault");
  g_autoptr(QipcSharedMemory) shm = create_segment (key, 8 << 20);
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_assert_true (qipc_shared_memory_prefault (shm, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stat (qipc_shared_memory_get_native_key (shm), &st), ==, 0);
  g_assert_cmpint ((gint64) st.st_blocks * 512, >=, 8 << 20);
  g_assert_true (all_zero (shm));
}

static void
test_error_key (void)
{
  const char *bad_keys[] = { "", "not \xff utf-8", NULL };

  for (gsize i = 0; i < G_N_ELEMENTS (bad_keys); i++)
    {
      g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (bad_keys[i]);
      g_autoptr(GError) error = NULL;

      g_assert_null (qipc_shared_memory_get_native_key (shm));
      g_assert_false (qipc_shared_memory_create (shm, 1, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
      g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_KEY_ERROR);
      g_clear_error (&error);
      g_assert_false (qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &error));
      g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_KEY_ERROR);
    }
}

static void
test_error_size (void)
{
  g_autofree char *key = qipc_test_key ("size");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GBytes) bytes = g_bytes_new_static ("abc", 3);
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_shared_memory_create (shm, 0, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE);
  g_clear_error (&error);
  g_assert_false (qipc_shared_memory_create (shm, QIPC_SHARED_MEMORY_MAX_SIZE + 1,
                                             QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE);
  g_clear_error (&error);

  g_assert_true (qipc_shared_memory_create (shm, 10, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_null (qipc_shared_memory_read (shm, 8, 3, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE);
  g_clear_error (&error);
  g_assert_null (qipc_shared_memory_read (shm, G_MAXSIZE, 2, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE);
  g_clear_error (&error);
  g_assert_false (qipc_shared_memory_write (shm, 8, bytes, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE);
  g_clear_error (&error);
  g_assert_true (qipc_shared_memory_write (shm, 7, bytes, &error));
  g_assert_no_error (error);
}

static void
test_error_state (void)
{
  g_autofree char *key = qipc_test_key ("state");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(QipcSharedMemory) twin = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (qipc_shared_memory_lock (shm, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR);
  g_clear_error (&error);
  g_assert_null (qipc_shared_memory_read (shm, 0, 1, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (qipc_shared_memory_create (shm, 10, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_false (qipc_shared_memory_create (shm, 10, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED);
  g_clear_error (&error);

  twin = qipc_shared_memory_new (key);
  g_assert_false (qipc_shared_memory_create (twin, 10, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS);
  g_assert_true (strstr (error->message, key) != NULL);
}

/* A file under the segment's name that qipc did not write, and that some
 * process holds open as a user, is refused rather than mapped. */
static void
test_error_damaged (void)
{
  g_autofree char *key = qipc_test_key ("damaged");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;
  struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
  int fd;

  fd = open (qipc_shared_memory_get_native_key (shm), O_RDWR | O_CREAT | O_EXCL, 0600);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, "garbage that is not a header at all, long enough to be read......", 64), ==, 64);
  g_assert_cmpint (ftruncate (fd, 8192), ==, 0);
  g_assert_cmpint (fcntl (fd, F_OFD_SETLK, &fl), ==, 0);

  g_assert_false (qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_FAILED);
  g_assert_false (qipc_shared_memory_is_attached (shm));

  unlink (qipc_shared_memory_get_native_key (shm));
  close (fd);
}

static void
test_error_out_of_resources (void)
{
  g_autofree char *key = qipc_test_key ("huge");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;

  /* Creating is lazy and succeeds; reserving 1 TiB cannot. */
  g_assert_true (qipc_shared_memory_create (shm, QIPC_SHARED_MEMORY_MAX_SIZE,
                                            QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_no_error (error);
  g_assert_false (qipc_shared_memory_prefault (shm, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_OUT_OF_RESOURCES);
}

static void
test_error_permission_denied (void)
{
  g_autofree char *key = qipc_test_key ("private");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(QipcSharedMemory) other = NULL;
  g_autoptr(GError) error = NULL;

  if (qipc_test_is_root ())
    {
      /* root passes every permission check: ask another user. */
      g_autoptr(QipcTestChild) child = NULL;

      g_assert_true (qipc_shared_memory_create (shm, 16, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
      child = qipc_test_child_spawn ("as-nobody", "shm", key, NULL);
      qipc_test_child_expect (child, "permission-denied");
      g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
      return;
    }

  qipc_shared_memory_set_permissions (shm, 0400);
  g_assert_true (qipc_shared_memory_create (shm, 16, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  other = qipc_shared_memory_new (key);
  g_assert_false (qipc_shared_memory_attach (other, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shared-memory/create-attach", test_create_attach);
  g_test_add_func ("/shared-memory/cross-process", test_cross_process);
  g_test_add_func ("/shared-memory/permissions", test_permissions);
  g_test_add_func ("/shared-memory/native-keys", test_native_keys);
  g_test_add_func ("/shared-memory/lifetime/last-detach-removes", test_last_detach_removes);
  g_test_add_func ("/shared-memory/lifetime/stale-after-kill-attach", test_stale_after_kill_attach);
  g_test_add_func ("/shared-memory/lifetime/stale-after-kill-create", test_stale_after_kill_create);
  g_test_add_func ("/shared-memory/lifetime/swept-after-kill", test_swept_after_kill);
  g_test_add_func ("/shared-memory/lifetime/concurrent-churn", test_concurrent_churn);
  g_test_add_func ("/shared-memory/lifetime/live-not-replaced", test_live_not_replaced);
  g_test_add_func ("/shared-memory/read-only/write-error", test_read_only_write_error);
  g_test_add_func ("/shared-memory/read-only/mapping", test_read_only_mapping);
  g_test_add_func ("/shared-memory/lock/basic", test_lock_basic);
  g_test_add_func ("/shared-memory/lock/contended", test_lock_contended);
  g_test_add_func ("/shared-memory/lock/recover-after-crash", test_lock_recover_after_crash);
  g_test_add_func ("/shared-memory/lock/async", test_lock_async);
  g_test_add_func ("/shared-memory/lock/async-free", test_lock_async_free);
  g_test_add_func ("/shared-memory/lock/async-recovered", test_lock_async_recovered);
  g_test_add_func ("/shared-memory/lock/async-cancel", test_lock_async_cancel);
  g_test_add_func ("/shared-memory/notify/cross-process", test_notify_cross_process);
  g_test_add_func ("/shared-memory/notify/in-process", test_notify_in_process);
  g_test_add_func ("/shared-memory/notify/forgets-dead", test_notify_forgets_dead);
  g_test_add_func ("/shared-memory/prefault", test_prefault);
  g_test_add_func ("/shared-memory/error/key", test_error_key);
  g_test_add_func ("/shared-memory/error/size", test_error_size);
  g_test_add_func ("/shared-memory/error/state", test_error_state);
  g_test_add_func ("/shared-memory/error/damaged", test_error_damaged);
  g_test_add_func ("/shared-memory/error/out-of-resources", test_error_out_of_resources);
  g_test_add_func ("/shared-memory/error/permission-denied", test_error_permission_denied);

  return g_test_run ();
}
