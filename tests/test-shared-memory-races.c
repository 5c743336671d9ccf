/* test-shared-memory-races.c: QipcSharedMemory's lifetime protocol, with
 * the interleavings that stress tests meet only now and then forced
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Linked with the library's objects: a private hook stops this process
 * inside qipc_shared_memory_detach(), and a helper process (a real user
 * of the segment, on the installed code path) acts in that window.
 */
#include "test-utils.h"
#include "qipc-shared-memory-private.h"

#include <string.h>

/* How many entries of /dev/shm belong to the segment at @path: the file
 * itself and its notification directory. */
static guint
count_leftovers (const char *path)
{
  g_autofree char *name = g_path_get_basename (path);
  g_autoptr(GDir) dir = g_dir_open ("/dev/shm", 0, NULL);
  const char *entry;
  guint count = 0;

  g_assert_nonnull (dir);
  while ((entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (entry, name))
      count++;
  return count;
}

static void
let_child_detach (QipcSharedMemory *self,
                  gpointer          user_data)
{
  QipcTestChild *child = user_data;

  qipc_test_child_send (child, "detach");
  qipc_test_child_expect (child, "detached");
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
}

/* The last two users detach at the same time: this process looks
 * whether it is the last while the child is still attached, then the
 * child detaches before this process has closed the segment. One of
 * them must remove it. They used to look while each still held its user
 * lock, each saw the other's and left the segment behind with nobody:
 * what made the churn test in test-shared-memory.c fail now and then. */
static void
test_last_users_detach_together (void)
{
  g_autofree char *key = qipc_test_key ("detach-together");
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(GError) error = NULL;
  const char *path = qipc_shared_memory_get_native_key (shm);

  g_assert_true (qipc_shared_memory_create (shm, 16, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_no_error (error);
  child = qipc_test_child_spawn ("shm-attach-until-input", key, NULL);
  qipc_test_child_expect (child, "attached");

  _qipc_shared_memory_set_detach_hook (let_child_detach, child);
  g_assert_true (qipc_shared_memory_detach (shm));
  _qipc_shared_memory_set_detach_hook (NULL, NULL);

  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_leftovers (path), ==, 0);

  /* And the key is free for a fresh segment. */
  g_assert_true (qipc_shared_memory_create (shm, 16, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_shared_memory_detach (shm));
  g_assert_cmpuint (count_leftovers (path), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shared-memory-races/last-users-detach-together",
                   test_last_users_detach_together);

  return g_test_run ();
}
