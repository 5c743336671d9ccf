# mirror_types.py: the GObject class the Python mirror tests export in
# one process and mirror in another (both import it, as two programs
# sharing a module would).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

from gi.repository import GObject


class PyCounter(GObject.Object):
    """A counter written in Python: property "value" (setting it emits
    "value-changed"), property "label", action "increment" returning the
    new value."""

    __gtype_name__ = 'QipcPyTestCounter'
    __gsignals__ = {
        'value-changed': (GObject.SignalFlags.RUN_LAST, None, (int, str)),
        'increment': (GObject.SignalFlags.RUN_LAST | GObject.SignalFlags.ACTION, int, (int,)),
    }

    label = GObject.Property(type=str, default='start')
    # A class default: an instance made from C (as a mirror is) may not
    # run __init__.
    _value = 0

    @GObject.Property(type=int, minimum=-2**31, maximum=2**31 - 1, default=0)
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        if value == self._value:
            return
        self._value = value
        self.emit('value-changed', value, self.label)

    def do_increment(self, by):
        self.value = self._value + by
        return self._value
