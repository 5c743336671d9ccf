/* qipc-version-macros.h: symbol visibility and availability markers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <glib.h>

#ifndef _QIPC_EXTERN
#define _QIPC_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define QIPC_AVAILABLE_IN_ALL _QIPC_EXTERN
#define QIPC_AVAILABLE_IN_1_0 _QIPC_EXTERN
