#!/usr/bin/python3
"""Small X11 helpers for the desktop tests (Debian's python3 with python3-xlib; no window manager).

  x11.py tray-owner      prints the window id owning the system tray selection, or exits 1
  x11.py close WINDOW    sends WM_DELETE_WINDOW, as a window manager's close button does
"""
import sys
from Xlib import X, display, protocol


def main():
    d = display.Display()
    if sys.argv[1] == "tray-owner":
        owner = d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S%d" % d.get_default_screen()))
        if owner == X.NONE or not owner:
            sys.exit(1)
        print(owner.id)
    elif sys.argv[1] == "close":
        w = d.create_resource_object("window", int(sys.argv[2], 0))
        protocols = d.intern_atom("WM_PROTOCOLS")
        delete = d.intern_atom("WM_DELETE_WINDOW")
        if delete not in (w.get_wm_protocols() or []):
            sys.exit("the window does not take WM_DELETE_WINDOW")
        ev = protocol.event.ClientMessage(window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        w.send_event(ev, event_mask=X.NoEventMask)
        d.flush()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
