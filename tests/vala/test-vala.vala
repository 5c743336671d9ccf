/* test-vala.vala: qipc from Vala, through the generated qipc-1.0.vapi
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A shared memory segment (create, lock, write, read back, unlock, and an
 * async lock), and a channel on a broker hosted in this program that
 * receives its own message through the main loop. Prints TAP; each check
 * that fails prints a "# " line saying what, and the exit status is 1.
 */

static int tests_run = 0;
static int tests_failed = 0;
static int pid = 0;

static void report (string name, string? failure)
{
  tests_run++;
  if (failure == null) {
    print ("ok %d - %s\n", tests_run, name);
  } else {
    tests_failed++;
    print ("not ok %d - %s\n", tests_run, name);
    printerr ("# %s: %s\n", name, failure);
  }
}

static string? test_shared_memory ()
{
  var shm = new Qipc.SharedMemory ("qipc-vala/%d/shm".printf (pid));
  try {
    shm.create (64, Qipc.SharedMemoryAccess.READ_WRITE);
    if (!shm.is_attached () || shm.get_size () < 64)
      return "not attached after create()";

    var text = "hello from Vala";
    shm.@lock ();
    shm.write (0, new Bytes (text.data));
    var back = shm.read (0, text.length);
    shm.@unlock ();
    if (back.compare (new Bytes (text.data)) != 0)
      return "read back something else than was written";

    /* The async lock, through the main loop. */
    var loop = new MainLoop ();
    Error? error = null;
    bool locked = false;
    shm.lock_async.begin (null, (obj, res) => {
      try {
        locked = shm.lock_async.end (res);
      } catch (Error e) {
        error = e;
      }
      loop.quit ();
    });
    loop.run ();
    if (error != null)
      return "lock_async: " + error.message;
    if (!locked)
      return "lock_async returned false";
    shm.@unlock ();
  } catch (Error e) {
    return e.message;
  } finally {
    shm.detach ();
  }
  return null;
}

static string? test_channel ()
{
  var address = "unix:abstract=qipc-vala-%d-channel".printf (pid);
  var broker = new Qipc.Broker ();
  Qipc.Bus? bus = null;
  string? failure = null;

  try {
    broker.listen (address);
    bus = new Qipc.Bus.for_address (address);
    var channel = new Qipc.Channel.for_bus (bus, "vala/test");
    var loop = new MainLoop ();
    string? got = null;

    channel.received.connect ((message, data) => {
      if (message == "hello" && data != null && data.is_of_type (VariantType.STRING))
        got = data.get_string ();
      else
        failure = "received %s %s".printf (message, data == null ? "(no data)" : data.print (true));
      loop.quit ();
    });
    /* Nothing arriving is a failure, not a hang. */
    uint timeout = 0;
    timeout = Timeout.add_seconds (30, () => {
      failure = "no message within 30 s";
      timeout = 0;
      loop.quit ();
      return Source.REMOVE;
    });

    Qipc.Channel.send_for_bus (bus, "vala/test", "hello", new Variant.string ("world"));
    loop.run ();
    if (timeout != 0)
      Source.remove (timeout);
    if (failure == null && got != "world")
      failure = "received %s instead of world".printf (got ?? "nothing");
  } catch (Error e) {
    failure = e.message;
  }

  if (bus != null)
    bus.close ();
  broker.close ();
  return failure;
}

int main (string[] args)
{
  try {
    pid = (int) new Credentials ().get_unix_pid ();
  } catch (Error e) {
    printerr ("# no pid: %s\n", e.message);
    return 1;
  }

  print ("1..2\n");
  report ("/vala/shared-memory", test_shared_memory ());
  report ("/vala/channel", test_channel ());
  return tests_failed == 0 ? 0 : 1;
}
