/* qipc-shm-sem-driver.c: runs `qipc shm …` and `qipc sem …` alone
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A test-only entry point for tools/qipc-shm-sem.c, with the same command
 * line as the `qipc` tool: "qipc-shm-sem-driver shm create KEY SIZE".
 */
#include "qipc-tool.h"

#include <glib.h>
#include <locale.h>
#include <string.h>

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  g_set_prgname ("qipc");

  if (argc >= 2 && strcmp (argv[1], "shm") == 0)
    return qipc_cmd_shm (argc - 1, argv + 1);
  if (argc >= 2 && strcmp (argv[1], "sem") == 0)
    return qipc_cmd_sem (argc - 1, argv + 1);

  g_printerr ("Usage: %s shm|sem COMMAND …\n", argv[0]);
  return 2;
}
