"""The flag that a parallel run was interrupted: nothing new starts, waits give up."""

import threading

requested = threading.Event()
