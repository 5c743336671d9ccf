/* qipc-tool.h: what the commands of the qipc tool share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * tools/qipc.c has main() and dispatches on the first argument; each
 * command is a function that takes the arguments from its own name on
 * (argv[0] is the command) and returns the process's exit status.
 * Commands kept in other files declare themselves here.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The exit statuses of every command, documented in qipc(1) and
 * docs/cli.md: scripts rely on them, so they never change meaning. */
typedef enum {
  QIPC_EXIT_OK = 0,
  QIPC_EXIT_FALSE = 1,        /* is-registered: no; listen: timeout with no message */
  QIPC_EXIT_USAGE = 2,        /* bad arguments, unknown command, invalid name or address */
  QIPC_EXIT_BAD_DATA = 3,     /* malformed GVariant text or JSON */
  QIPC_EXIT_NO_BROKER = 4,    /* no broker reachable */
  QIPC_EXIT_DENIED = 5,       /* refused by the broker's policy, or by the system */
  QIPC_EXIT_FAILED = 6,       /* any other error */
} QipcExit;

/* What every command prints on standard error, "qipc COMMAND: MESSAGE"
 * (docs/cli.md); @command is the whole command, "send" or "shm create".
 * Both return @status, or QIPC_EXIT_USAGE for a usage error, whose
 * message ends "(see qipc COMMAND --help)". */
int qipc_tool_fail        (const char *command,
                           int         status,
                           const char *format,
                           ...) G_GNUC_PRINTF (3, 4);
int qipc_tool_failv       (const char *command,
                           int         status,
                           const char *format,
                           va_list     args) G_GNUC_PRINTF (3, 0);
int qipc_tool_usage_error (const char *command,
                           const char *format,
                           ...) G_GNUC_PRINTF (2, 3);

/* qipc shm …, qipc sem …: in tools/qipc-shm-sem.c when it is built;
 * tools/qipc.c has weak stand-ins that say the command is missing. */
int qipc_cmd_shm (int argc, char **argv);
int qipc_cmd_sem (int argc, char **argv);

G_END_DECLS
