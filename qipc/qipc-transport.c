/* qipc-transport.c: the base of the channel transports behind QipcBus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-transport-private.h"
#include "qipc-dbus-transport-private.h"
#include "qipc-mqtt-transport-private.h"

typedef struct
{
  QipcBus *bus;               /* not referenced: it owns the transport */
} QipcTransportPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (QipcTransport, _qipc_transport, G_TYPE_OBJECT)

typedef QipcTransport *(*TransportNew) (const char  *address,
                                        GError     **error);

/* Each transport, by the prefix of its addresses. Native addresses
 * (unix:, tcp:) are not here: QipcBus speaks that protocol itself. */
static const struct
{
  const char *prefix;
  TransportNew new_for_address;
} transports[] = {
  { "dbus:", _qipc_dbus_transport_new },
  { "mqtt://", _qipc_mqtt_transport_new },
  { "mqtts://", _qipc_mqtt_transport_new },
};

static void
_qipc_transport_class_init (QipcTransportClass *klass)
{
}

static void
_qipc_transport_init (QipcTransport *self)
{
}

QipcTransport *
_qipc_transport_new_for_address (QipcBus     *bus,
                                 const char  *address,
                                 GError     **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (transports); i++)
    {
      QipcTransport *transport;
      QipcTransportPrivate *priv;

      if (!g_str_has_prefix (address, transports[i].prefix))
        continue;
      transport = transports[i].new_for_address (address, error);
      if (transport == NULL)
        return NULL;
      priv = _qipc_transport_get_instance_private (transport);
      priv->bus = bus;
      return transport;
    }
  return NULL;
}

QipcBus *
_qipc_transport_get_bus (QipcTransport *self)
{
  QipcTransportPrivate *priv = _qipc_transport_get_instance_private (self);

  return priv->bus;
}
