/* qipc-tool.h: the subcommands of the `qipc` command-line tool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each takes the arguments from its command word on: argv[0] is "shm" or
 * "sem", argv[1] the subcommand. Each returns the process exit status:
 * 0 ok, 1 a false answer (a timed-out wait), 2 usage, 3 bad input,
 * 4 no broker, 5 permission denied, 6 any other failure.
 */
#pragma once

int qipc_cmd_shm (int argc, char **argv);
int qipc_cmd_sem (int argc, char **argv);
