/* qipc.h: the umbrella header of libqipc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define __QIPC_INSIDE__

#include "qipc-version-macros.h"
#include "qipc-version.h"
#include "qipc-enum-types.h"
#include "qipc-broker.h"
#include "qipc-bus.h"
#include "qipc-bus-export.h"
#include "qipc-channel.h"
#include "qipc-dbus.h"
#include "qipc-local-server.h"
#include "qipc-local-socket.h"
#include "qipc-mirror.h"
#include "qipc-remote.h"
#include "qipc-server.h"
#include "qipc-shared-memory.h"
#include "qipc-socket.h"
#include "qipc-system-semaphore.h"
#include "qipc-tcp-server.h"
#include "qipc-tcp-socket.h"

#undef __QIPC_INSIDE__
