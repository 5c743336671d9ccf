/* qipc-remote.h: what exporting and mirroring objects share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-version-macros.h"

G_BEGIN_DECLS

/**
 * QipcRemoteError:
 * @QIPC_REMOTE_ERROR_FAILED: any other failure
 * @QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE: a signal argument, return value or
 *   property has a type that qipc cannot carry between processes (the
 *   message names the signal or property, the argument and the type)
 * @QIPC_REMOTE_ERROR_INVALID_ARGUMENTS: values that came from another
 *   process do not have the types the local class expects
 * @QIPC_REMOTE_ERROR_ALREADY_EXPORTED: an object is already exported at
 *   that path
 * @QIPC_REMOTE_ERROR_NOT_FOUND: no object is exported at that path, or it
 *   has no such signal, property or action
 * @QIPC_REMOTE_ERROR_VANISHED: the process that exported the object is gone
 * @QIPC_REMOTE_ERROR_INVALID_NAME: an object path, interface name or
 *   member name is not valid
 *
 * Errors in the %QIPC_REMOTE_ERROR domain, used when objects are
 * exported to other processes and mirrored from them.
 */
typedef enum {
  QIPC_REMOTE_ERROR_FAILED,
  QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE,
  QIPC_REMOTE_ERROR_INVALID_ARGUMENTS,
  QIPC_REMOTE_ERROR_ALREADY_EXPORTED,
  QIPC_REMOTE_ERROR_NOT_FOUND,
  QIPC_REMOTE_ERROR_VANISHED,
  QIPC_REMOTE_ERROR_INVALID_NAME,
} QipcRemoteError;

/**
 * QIPC_REMOTE_ERROR:
 *
 * The error domain of exported and mirrored objects.
 */
#define QIPC_REMOTE_ERROR (qipc_remote_error_quark ())

/**
 * QipcExportFlags:
 * @QIPC_EXPORT_FLAGS_NONE: nothing
 * @QIPC_EXPORT_FLAGS_SIGNALS: every signal of the object's class is sent
 *   to the other processes when emitted, its arguments converted
 * @QIPC_EXPORT_FLAGS_PROPERTIES: readable properties can be read, and
 *   writable ones written, from other processes; changes are announced
 *   when the object notifies them
 * @QIPC_EXPORT_FLAGS_ACTIONS: action signals (%G_SIGNAL_ACTION) can be
 *   emitted from other processes, as method calls that return the
 *   signal's return value
 * @QIPC_EXPORT_FLAGS_ALL: signals, properties and actions
 * @QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED: leave out the signals and
 *   properties whose types cannot be carried, instead of failing with
 *   %QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE
 *
 * What an export makes visible to other processes.
 */
typedef enum /*< flags >*/ {
  QIPC_EXPORT_FLAGS_NONE             = 0,
  QIPC_EXPORT_FLAGS_SIGNALS          = 1 << 0,
  QIPC_EXPORT_FLAGS_PROPERTIES       = 1 << 1,
  QIPC_EXPORT_FLAGS_ACTIONS          = 1 << 2,
  QIPC_EXPORT_FLAGS_ALL              = 0x7,
  QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED = 1 << 3,
} QipcExportFlags;

QIPC_AVAILABLE_IN_1_0
GQuark qipc_remote_error_quark (void);

G_END_DECLS
