"""Ctrl-C during `kubetune run` is answered between two steps, never inside one."""
import os
import signal
import time

from kubetune.local.interrupts import Interrupts


def test_ctrl_c_becomes_a_request_the_loop_sees_and_sleep_wakes_for_it():
    before = signal.getsignal(signal.SIGINT)
    with Interrupts() as ctrl_c:
        assert not ctrl_c.requested
        t0 = time.monotonic()
        ctrl_c.sleep(0.05)
        assert time.monotonic() - t0 >= 0.05
        os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt here without the context
        t0 = time.monotonic()
        ctrl_c.sleep(30)
        assert ctrl_c.requested and time.monotonic() - t0 < 1
    assert signal.getsignal(signal.SIGINT) is before
