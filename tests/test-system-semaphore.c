/* test-system-semaphore.c: QipcSystemSemaphore, in one and several processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "test-utils.h"

#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>

static QipcSystemSemaphore *
new_semaphore (const char                *key,
               guint                      value,
               QipcSystemSemaphoreAccess  access)
{
  g_autoptr(GError) error = NULL;
  QipcSystemSemaphore *sem = qipc_system_semaphore_new (key, value, access, &error);

  g_assert_no_error (error);
  g_assert_nonnull (sem);
  return sem;
}

static int
value_of (QipcSystemSemaphore *sem)
{
  g_autoptr(GError) error = NULL;
  int value = qipc_system_semaphore_get_value (sem, &error);

  g_assert_no_error (error);
  return value;
}

static key_t
sysv_key_of (QipcSystemSemaphore *sem)
{
  return (key_t) g_ascii_strtoull (qipc_system_semaphore_get_native_key (sem), NULL, 16);
}

static void
test_basic (void)
{
  g_autofree char *key = qipc_test_key ("basic");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 1, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr (qipc_system_semaphore_get_key (sem), ==, key);
  g_assert_true (g_str_has_prefix (qipc_system_semaphore_get_native_key (sem), "0x"));
  g_assert_cmpint (value_of (sem), ==, 1);

  g_assert_true (qipc_system_semaphore_acquire (sem, &error));
  g_assert_no_error (error);
  g_assert_cmpint (value_of (sem), ==, 0);

  g_assert_false (qipc_system_semaphore_try_acquire (sem, 0, &error));
  g_assert_no_error (error);
  g_assert_false (qipc_system_semaphore_try_acquire (sem, 20, &error));
  g_assert_no_error (error);

  g_assert_true (qipc_system_semaphore_release (sem, 3, &error));
  g_assert_true (qipc_system_semaphore_release (sem, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (value_of (sem), ==, 3);
  g_assert_true (qipc_system_semaphore_try_acquire (sem, 0, &error));
  g_assert_cmpint (value_of (sem), ==, 2);
}

static void
test_access_modes (void)
{
  g_autofree char *key = qipc_test_key ("access");
  G_GNUC_UNUSED g_autoptr(QipcSystemSemaphore) creator = new_semaphore (key, 3, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcSystemSemaphore) opener = new_semaphore (key, 7, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN);
  g_autoptr(QipcSystemSemaphore) resetter = NULL;

  /* OPEN keeps the existing value; CREATE resets it. */
  g_assert_cmpint (value_of (opener), ==, 3);
  resetter = new_semaphore (key, 5, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_assert_cmpint (value_of (opener), ==, 5);
  g_assert_cmpstr (qipc_system_semaphore_get_native_key (opener), ==,
                   qipc_system_semaphore_get_native_key (resetter));
}

static void
test_permissions (void)
{
  g_autofree char *key = qipc_test_key ("mode");
  g_autofree char *key2 = qipc_test_key ("mode-group");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcSystemSemaphore) shared = NULL;
  g_autoptr(GError) error = NULL;
  struct semid_ds ds;

  g_assert_cmpint (semctl (semget (sysv_key_of (sem), 0, 0), 0, IPC_STAT, &ds), ==, 0);
  g_assert_cmpuint (ds.sem_perm.mode & 0777, ==, 0600);

  shared = qipc_system_semaphore_new_full (key2, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE, 0660, &error);
  g_assert_no_error (error);
  g_assert_cmpint (semctl (semget (sysv_key_of (shared), 0, 0), 0, IPC_STAT, &ds), ==, 0);
  g_assert_cmpuint (ds.sem_perm.mode & 0777, ==, 0660);
}

/* Where the creator registers the key for `qipc sem list`:
 * /dev/shm/qipc-sem-<first 16 bytes of SHA-256 ("qipc-1\0sem\0" key)>.key */
static char *
registry_path_of (const char *key)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize length = sizeof digest;
  GString *path = g_string_new ("/dev/shm/qipc-sem-");

  g_checksum_update (checksum, (const guint8 *) "qipc-1\0sem\0", 11);
  g_checksum_update (checksum, (const guint8 *) key, strlen (key));
  g_checksum_get_digest (checksum, digest, &length);
  for (guint i = 0; i < 16; i++)
    g_string_append_printf (path, "%02x", digest[i]);
  g_string_append (path, ".key");
  return g_string_free (path, FALSE);
}

static void
test_creator_removes (void)
{
  g_autofree char *key = qipc_test_key ("owner");
  g_autofree char *registry = registry_path_of (key);
  g_autofree char *registered = NULL;
  QipcSystemSemaphore *creator = new_semaphore (key, 2, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN);
  key_t sysv_key = sysv_key_of (creator);

  g_assert_cmpint (semget (sysv_key, 0, 0), >=, 0);
  g_assert_true (g_file_get_contents (registry, &registered, NULL, NULL));
  g_assert_cmpstr (registered, ==, key);
  g_object_unref (creator);
  g_assert_cmpint (semget (sysv_key, 0, 0), <, 0);
  g_assert_false (g_file_test (registry, G_FILE_TEST_EXISTS));
}

static void
test_crash_gives_back_held (void)
{
  g_autofree char *key = qipc_test_key ("crash-held");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 3, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("sem-hold", key, "2", NULL);

  qipc_test_child_expect (child, "held");
  g_assert_cmpint (value_of (sem), ==, 1);
  qipc_test_child_kill (child);
  g_assert_cmpint (value_of (sem), ==, 3);
}

/* A process that acquires 1 and releases 3 then exits leaves the value
 * 2 higher: it held nothing at exit, so nothing is undone. Plain SEM_UNDO
 * on every operation would take the 3 back and give the 1 back. */
static void
test_exit_keeps_releases (void)
{
  g_autofree char *key = qipc_test_key ("keeps-releases");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 1, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("sem-acquire-release", key, "1", "3", NULL);

  qipc_test_child_expect (child, "done");
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
  g_assert_cmpint (value_of (sem), ==, 3);
}

/* A consumer that exits normally has consumed what it took. */
static void
test_exit_keeps_acquisitions (void)
{
  g_autofree char *key = qipc_test_key ("keeps-acquisitions");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 5, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("sem-acquire-release", key, "2", "0", NULL);

  qipc_test_child_expect (child, "done");
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
  g_assert_cmpint (value_of (sem), ==, 3);
}

/* A producer may post far more than 32767 times over its life: with
 * SEM_UNDO on its releases the kernel would refuse once its undo count
 * passes -32768. */
static void
test_producer_beyond_undo_limit (void)
{
  g_autofree char *key = qipc_test_key ("producer");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcSystemSemaphore) producer = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(GError) error = NULL;

  for (int round = 0; round < 3; round++)
    {
      child = qipc_test_child_spawn ("sem-release", key, "20000", NULL);
      qipc_test_child_expect (child, "released");
      g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
      g_clear_pointer (&child, qipc_test_child_free);
      g_assert_cmpint (value_of (sem), ==, 20000);
      /* This process consumes them: past 32767 held units it keeps
       * acquiring, without a way back for the excess. */
      for (int i = 0; i < 20000; i++)
        g_assert_true (qipc_system_semaphore_try_acquire (sem, 0, &error));
      g_assert_no_error (error);
    }

  /* And within one process: release 3 × 20000 from an object that never
   * acquired. */
  for (int round = 0; round < 3; round++)
    {
      g_assert_true (qipc_system_semaphore_release (producer, 20000, &error));
      g_assert_no_error (error);
      for (int i = 0; i < 20000; i++)
        g_assert_true (qipc_system_semaphore_try_acquire (sem, 0, &error));
    }
  g_assert_cmpint (value_of (sem), ==, 0);
}

static void
test_ping_pong (void)
{
  g_autofree char *ping_key = qipc_test_key ("ping");
  g_autofree char *pong_key = qipc_test_key ("pong");
  g_autoptr(QipcSystemSemaphore) ping = new_semaphore (ping_key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcSystemSemaphore) pong = new_semaphore (pong_key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("sem-pingpong", ping_key, pong_key, "1000", NULL);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (child, "ready");
  for (int i = 0; i < 1000; i++)
    {
      g_assert_true (qipc_system_semaphore_release (ping, 1, &error));
      g_assert_true (qipc_system_semaphore_try_acquire (pong, 10000, &error));
      g_assert_no_error (error);
    }
  qipc_test_child_expect (child, "done");
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
  g_assert_cmpint (value_of (ping), ==, 0);
  g_assert_cmpint (value_of (pong), ==, 0);
}

static void
test_async_acquire (void)
{
  g_autofree char *key = qipc_test_key ("async");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  qipc_system_semaphore_acquire_async (sem, NULL, qipc_test_store_result, &result);
  /* The main context runs while the worker waits. */
  for (int i = 0; i < 3; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (result);

  child = qipc_test_child_spawn ("sem-release", key, "1", NULL);
  qipc_test_wait_for_result (&result);
  g_assert_true (qipc_system_semaphore_acquire_finish (sem, result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
  g_assert_cmpint (value_of (sem), ==, 0);
}

static void
test_async_cancel (void)
{
  g_autofree char *key = qipc_test_key ("cancel");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  qipc_system_semaphore_acquire_async (sem, cancellable, qipc_test_store_result, &result);
  g_timeout_add (30, qipc_test_cancel_cb, cancellable);
  qipc_test_wait_for_result (&result);
  g_assert_false (qipc_system_semaphore_acquire_finish (sem, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* A unit released now may be caught by the worker that is still
   * winding down; it must come back, so this acquire gets it. */
  g_assert_true (qipc_system_semaphore_release (sem, 1, &error));
  g_assert_true (qipc_system_semaphore_try_acquire (sem, 10000, &error));
  g_assert_no_error (error);
  g_assert_cmpint (value_of (sem), ==, 0);
}

static void
test_error_key (void)
{
  g_autoptr(GError) error = NULL;
  QipcSystemSemaphore *sem;

  sem = qipc_system_semaphore_new ("", 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  g_assert_null (sem);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR);
  g_clear_error (&error);

  sem = qipc_system_semaphore_new ("bad \xff utf-8", 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  g_assert_null (sem);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR);
}

static void
test_error_foreign_set (void)
{
  g_autofree char *key = qipc_test_key ("foreign");
  QipcSystemSemaphore *probe = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  key_t sysv_key = sysv_key_of (probe);
  g_autoptr(GError) error = NULL;
  QipcSystemSemaphore *sem;
  int semid;

  g_object_unref (probe);

  /* Someone else's set of one semaphore on the same IPC key. */
  semid = semget (sysv_key, 1, IPC_CREAT | IPC_EXCL | 0600);
  g_assert_cmpint (semid, >=, 0);
  sem = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  g_assert_null (sem);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR);
  g_assert_true (strstr (error->message, key) != NULL);
  g_clear_error (&error);
  semctl (semid, 0, IPC_RMID);

  /* A set of the right shape that its creator never initialised. */
  semid = semget (sysv_key, 2, IPC_CREAT | IPC_EXCL | 0600);
  g_assert_cmpint (semid, >=, 0);
  sem = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  g_assert_null (sem);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED);
  semctl (semid, 0, IPC_RMID);
}

static void
test_error_already_exists (void)
{
  g_autofree char *key = qipc_test_key ("exclusive");
  G_GNUC_UNUSED g_autoptr(QipcSystemSemaphore) first = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE);
  g_autoptr(GError) error = NULL;
  QipcSystemSemaphore *second;

  second = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE, &error);
  g_assert_null (second);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_ALREADY_EXISTS);
}

static void
test_error_not_found (void)
{
  g_autofree char *key = qipc_test_key ("removed");
  g_autoptr(QipcSystemSemaphore) creator = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(QipcSystemSemaphore) user = new_semaphore (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* A waiter is woken by the removal, with the error. */
  qipc_system_semaphore_acquire_async (user, NULL, qipc_test_store_result, &result);
  g_usleep (20000);
  g_assert_true (qipc_system_semaphore_remove (creator, &error));
  g_assert_no_error (error);

  qipc_test_wait_for_result (&result);
  g_assert_false (qipc_system_semaphore_acquire_finish (user, result, &error));
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_false (qipc_system_semaphore_release (user, 1, &error));
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (qipc_system_semaphore_release (creator, 1, &error));
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND);
}

static void
test_error_out_of_resources (void)
{
  g_autofree char *key = qipc_test_key ("limits");
  g_autoptr(QipcSystemSemaphore) sem = new_semaphore (key, QIPC_SYSTEM_SEMAPHORE_MAX_VALUE - 1,
                                                      QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_autoptr(GError) error = NULL;
  QipcSystemSemaphore *too_big;

  g_assert_true (qipc_system_semaphore_release (sem, 1, &error));
  g_assert_no_error (error);
  g_assert_false (qipc_system_semaphore_release (sem, 1, &error));
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES);
  g_clear_error (&error);
  g_assert_cmpint (value_of (sem), ==, QIPC_SYSTEM_SEMAPHORE_MAX_VALUE);

  too_big = qipc_system_semaphore_new (key, 40000, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE, &error);
  g_assert_null (too_big);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES);
}

static void
test_error_permission_denied (void)
{
  g_autofree char *key = qipc_test_key ("private");
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcSystemSemaphore) sem = NULL;

  if (qipc_test_is_root ())
    {
      /* root passes every permission check: ask another user. */
      g_autoptr(QipcTestChild) child = NULL;

      sem = new_semaphore (key, 1, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
      child = qipc_test_child_spawn ("as-nobody", "sem", key, NULL);
      qipc_test_child_expect (child, "permission-denied");
      g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
      return;
    }

  /* Without write permission even the owner cannot change the value. */
  sem = qipc_system_semaphore_new_full (key, 1, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE, 0400, &error);
  g_assert_no_error (error);
  g_assert_false (qipc_system_semaphore_try_acquire (sem, 0, &error));
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_PERMISSION_DENIED);
}

static void
test_leftover_reset (void)
{
  g_autofree char *key = qipc_test_key ("leftover");
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("sem-create", key, "9", NULL);
  g_autoptr(QipcSystemSemaphore) opened = NULL;
  g_autoptr(QipcSystemSemaphore) created = NULL;

  qipc_test_child_expect (child, "created");
  qipc_test_child_kill (child);

  /* The creator crashed: the semaphore is left with its value... */
  opened = new_semaphore (key, 1, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN);
  g_assert_cmpint (value_of (opened), ==, 9);
  /* ...until CREATE takes it over and resets it. */
  created = new_semaphore (key, 2, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE);
  g_assert_cmpint (value_of (opened), ==, 2);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/system-semaphore/basic", test_basic);
  g_test_add_func ("/system-semaphore/access-modes", test_access_modes);
  g_test_add_func ("/system-semaphore/permissions", test_permissions);
  g_test_add_func ("/system-semaphore/creator-removes", test_creator_removes);
  g_test_add_func ("/system-semaphore/leftover-reset", test_leftover_reset);
  g_test_add_func ("/system-semaphore/crash/gives-back-held", test_crash_gives_back_held);
  g_test_add_func ("/system-semaphore/crash/exit-keeps-releases", test_exit_keeps_releases);
  g_test_add_func ("/system-semaphore/crash/exit-keeps-acquisitions", test_exit_keeps_acquisitions);
  g_test_add_func ("/system-semaphore/crash/producer-beyond-undo-limit", test_producer_beyond_undo_limit);
  g_test_add_func ("/system-semaphore/ping-pong", test_ping_pong);
  g_test_add_func ("/system-semaphore/async/acquire", test_async_acquire);
  g_test_add_func ("/system-semaphore/async/cancel", test_async_cancel);
  g_test_add_func ("/system-semaphore/error/key", test_error_key);
  g_test_add_func ("/system-semaphore/error/foreign-set", test_error_foreign_set);
  g_test_add_func ("/system-semaphore/error/already-exists", test_error_already_exists);
  g_test_add_func ("/system-semaphore/error/not-found", test_error_not_found);
  g_test_add_func ("/system-semaphore/error/out-of-resources", test_error_out_of_resources);
  g_test_add_func ("/system-semaphore/error/permission-denied", test_error_permission_denied);

  return g_test_run ();
}
